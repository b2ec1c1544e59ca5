/**
 * Conditions of `wait` and `assert` steps: `PATH OP VALUE` (or a bare PATH, true when truthy).
 * PATH is dotted, rooted at a namespace the runner fills (see docs/operations.md):
 *   pool.<name>.<status field…>               the pool workflow's `status` query
 *   rollout|backup|training.<label>.<field…>  that workflow's query (status / progress)
 *   <kind>.<label>.workflow                    its execution status: running, completed, failed, …
 *   <kind>.<label>.result.<field…>             its result, once it completed
 *   <kind>.<label>.pending.<activity>.<attempt|worker|heartbeats>   an in-flight activity
 *   <kind>.<label>.history.<workflowTaskFailures|events|retried.<activity>>   from its history
 *   provider.<pool>.<live|running|provisioning|dead>   counts at the provider
 *   agents.<pool>.<answering|healthy|unhealthy|degraded|cordoned|active>   counts over the live agents
 * `.length` of a list is its length. OP: == != >= <= > <. VALUE: a number, true, false, null, or a
 * word or 'quoted string'.
 */
export type Op = '==' | '!=' | '>=' | '<=' | '>' | '<';
export interface Condition {
  text: string;
  path: string[];
  op?: Op;
  value?: unknown;
}

export const NAMESPACES = ['pool', 'rollout', 'backup', 'training', 'provider', 'agents'] as const;
const PROVIDER_FIELDS = ['live', 'running', 'provisioning', 'dead'];
const AGENT_FIELDS = ['answering', 'healthy', 'unhealthy', 'degraded', 'cordoned', 'active'];

/** `labels`: the workflows started so far (`pool.demo`, `backup.nightly`, …); a path must name one of them. */
export function parseCondition(text: string, labels: string[]): Condition {
  const m = /^\s*([A-Za-z_][\w.-]*)\s*(?:(==|!=|>=|<=|>|<)\s*(.+?))?\s*$/.exec(text);
  if (!m) throw new Error(`cannot read condition '${text}': expected PATH OP VALUE, e.g. "pool.demo.counts.healthy == 4"`);
  const path = m[1].split('.');
  const [ns, name, field] = path;
  if (!(NAMESPACES as readonly string[]).includes(ns)) throw new Error(`condition '${text}': '${ns}' is not a namespace (expected one of ${NAMESPACES.join(', ')})`);
  if (!name) throw new Error(`condition '${text}': '${ns}' needs a name after it (${ns}.<name>…)`);
  const pools = labels.filter((l) => l.startsWith('pool.')).map((l) => l.slice(5));
  if (ns === 'provider' || ns === 'agents') {
    if (!pools.includes(name)) throw new Error(`condition '${text}': no pool '${name}' in the fleet (pools: ${pools.join(', ')})`);
    const fields = ns === 'provider' ? PROVIDER_FIELDS : AGENT_FIELDS;
    if (!field || !fields.includes(field) || path.length > 3) throw new Error(`condition '${text}': ${ns}.${name} has ${fields.map((f) => `.${f}`).join(', ')}`);
  } else if (!labels.includes(`${ns}.${name}`)) {
    const known = labels.filter((l) => l.startsWith(`${ns}.`));
    throw new Error(`condition '${text}': no ${ns} '${name}' started by an earlier step${known.length ? ` (known: ${known.join(', ')})` : ''}`);
  }
  if (m[2] === undefined) return { text: text.trim(), path };
  return { text: text.trim(), path, op: m[2] as Op, value: literal(m[3]) };
}

function literal(raw: string): unknown {
  if (/^'.*'$|^".*"$/.test(raw)) return raw.slice(1, -1);
  if (raw === 'true' || raw === 'false') return raw === 'true';
  if (raw === 'null') return null;
  const n = Number(raw);
  return Number.isFinite(n) && raw.trim() !== '' ? n : raw;
}

/** Follows `path` into `root` (a missing step gives undefined; `.length` of a list is its length). */
export function lookup(root: unknown, path: string[]): unknown {
  let v = root;
  for (const key of path) {
    if (v === undefined || v === null) return undefined;
    if (Array.isArray(v) && key === 'length') v = v.length;
    else if (Array.isArray(v) && /^\d+$/.test(key)) v = v[Number(key)];
    else if (typeof v === 'object') v = (v as Record<string, unknown>)[key];
    else return undefined;
  }
  return v;
}

/** Whether the condition holds for `actual` (the value at its path). */
export function holds(c: Condition, actual: unknown): boolean {
  if (c.op === undefined) return Boolean(actual);
  const v = c.value;
  switch (c.op) {
    case '==':
      return actual === v || (typeof actual === 'string' && typeof v === 'number' && actual === String(v));
    case '!=':
      return !(actual === v || (typeof actual === 'string' && typeof v === 'number' && actual === String(v)));
    default: {
      if (typeof actual !== 'number' || typeof v !== 'number') return false;
      return c.op === '>=' ? actual >= v : c.op === '<=' ? actual <= v : c.op === '>' ? actual > v : actual < v;
    }
  }
}
