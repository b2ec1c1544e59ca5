import {
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  ChildWorkflowFailure,
  condition,
  continueAsNew,
  log,
  ParentClosePolicy,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { NodeActivities } from '../activities/nodes.ts';
import type { PoolActivities } from '../activities/pool/index.ts';
import { INVALID_ARGUMENT, invalidArgument } from './errors.ts';
import { fleetPoolWorkflowId, parseFleetPoolSpec, resolveAmount, type FleetPoolConfig, type FleetPoolSpec } from './inputs/fleetPool.ts';
import { replaceNodeWorkflowId } from './inputs/replaceNode.ts';
import { NODE_ID, NODE_ID_HELP } from './inputs/validate.ts';
import {
  acquireLeaseUpdate,
  applySpecUpdate,
  claimNodesUpdate,
  cordonNodeUpdate,
  pauseRemediationUpdate,
  poolStatusQuery,
  releaseClaimsUpdate,
  releaseLeaseUpdate,
  replaceNodeUpdate,
  resizeUpdate,
  resumeRemediationUpdate,
  swapMembersUpdate,
  uncordonNodeUpdate,
  type LeaseAnswer,
  type PoolNode,
  type PoolPhase,
  type PoolStatus,
} from './pool/api.ts';
import { clampDesired, decide, pickScaleDown } from './pool/autoscaler.ts';
import { evaluate as evaluateBreaker, recordBad, reset as resetBreaker } from './pool/breaker.ts';
import * as budget from './pool/budget.ts';
import { applyChanges, viewDigest, type ProbeView } from './pool/digest.ts';
import { freshState, pushEvent, type PoolState } from './pool/state.ts';
import { replaceNode } from './replaceNode.ts';
import { DRYDOCK_PHASE, DRYDOCK_POOL } from './searchAttributes.ts';

export type { PoolStatus } from './pool/api.ts';

const short = { startToCloseTimeout: '1 minute', heartbeatTimeout: '20 seconds', retry: { maximumInterval: '10 seconds', maximumAttempts: 5 } } as const;
const HOLDER = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$/;

/**
 * A long-lived workflow per pool (id `pool/<name>`): probes every agent each interval, reconciles
 * membership with the provider, replaces nodes that stay unhealthy or unreachable through
 * replaceNode children, keeps the size between min and max (reactive autoscaling), and puts every
 * disruptive action through one disruption budget guarded by a circuit breaker.
 * `carried` is only for continue-as-new: the whole state of the previous run.
 */
export async function fleetPool(rawSpec: FleetPoolSpec, carried?: PoolState): Promise<void> {
  let cfg: FleetPoolConfig = parseFleetPoolSpec(rawSpec);
  const expectedId = fleetPoolWorkflowId(cfg.name);
  if (workflowInfo().workflowId !== expectedId) {
    throw invalidArgument('workflowId', `must be '${expectedId}' so that one pool has exactly one manager`);
  }
  const pool = cfg.name;
  const s: PoolState = carried ?? freshState(rawSpec);
  s.spec = rawSpec;

  const probeActs = proxyActivities<PoolActivities>({ startToCloseTimeout: '5 minutes', heartbeatTimeout: '1 minute', retry: { maximumAttempts: 3 } });
  const acts = proxyActivities<NodeActivities>(short);
  const slowActs = proxyActivities<NodeActivities>({ ...short, startToCloseTimeout: '15 minutes', retry: { maximumInterval: '10 seconds' } });
  const drainActs = () => proxyActivities<NodeActivities>({ ...short, startToCloseTimeout: `${cfg.health.drainTimeoutSeconds + 120} seconds` });

  /** Running side tasks (replacements, scale-ups, scale-downs, cordons); never carried: continue-as-new waits for them. */
  const tasks = new Map<string, Promise<void>>();
  let provisioningNow = 0;
  let dirty = true;
  let stopping = false;
  let lastPhase: PoolPhase | undefined;

  const now = () => Date.now();
  const event = (message: string, nodeId?: string) => {
    pushEvent(s, now(), message, nodeId);
    log.info(`pool ${pool}: ${nodeId ? `${nodeId}: ` : ''}${message}`);
  };
  const members = () => Object.values(s.nodes);
  const claims = () => (s.claims ??= {});
  const maxUnavailable = () => resolveAmount(cfg.disruption.maxUnavailable, Math.max(members().length, s.autoscaler.desired), 'down-min-1');
  const minHealthy = () => resolveAmount(cfg.disruption.minHealthy, members().length, 'up');
  const healthyCount = () => members().filter((n) => n.health === 'healthy' && n.phase === 'active').length;
  const phase = (): PoolPhase => (s.paused ? 'paused' : s.breaker.open ? 'breaker-open' : s.lastProbe ? 'running' : 'starting');
  const autoRemediation = () => cfg.health.autoReplace && !s.paused && !s.breaker.open;

  function spawn(key: string, fn: () => Promise<void>): void {
    const p = fn()
      .catch((err: unknown) => event(`${key} failed: ${causeMessage(err)}`))
      .finally(() => {
        tasks.delete(key);
        dirty = true;
      });
    tasks.set(key, p);
  }

  function addNode(id: string, health: PoolNode['health'] = s.view[id] ?? 'unknown'): void {
    if (s.nodes[id]) return;
    s.nodes[id] = { id, phase: 'active', health, badProbes: 0, joinedAt: now(), ...(health === 'unreachable' ? { unreachableSince: now() } : {}) };
  }

  // ---- disruption budget -------------------------------------------------------------------

  function grantPass(): void {
    // Requests for nodes that left the pool are void.
    for (const r of s.budget.queue) if (r.nodeId && !s.nodes[r.nodeId]) s.budget = budget.release(s.budget, r.holder);
    if (stopping) return;
    const { budget: next, granted } = budget.grant(s.budget, maxUnavailable(), now());
    s.budget = next;
    s.maxDisrupted = Math.max(s.maxDisrupted, s.budget.leases.length);
    for (const l of granted) startLeaseWork(l);
  }

  function startLeaseWork(l: budget.Lease): void {
    if (l.kind === 'external') {
      const n = isOutsideReplacement(l.holder) && l.nodeId ? s.nodes[l.nodeId] : undefined;
      if (n) n.phase = 'replacing';
      event(n ? `a replaceNode started outside the pool took a lease (${l.holder})` : `lease granted to ${l.holder}`, l.nodeId);
      return;
    }
    const node = l.nodeId ? s.nodes[l.nodeId] : undefined;
    if (!node) {
      s.budget = budget.release(s.budget, l.holder);
      return;
    }
    if (l.kind === 'replace') startReplacement(node, l);
    else if (l.kind === 'scale-down') startScaleDown(node, l);
    else startCordon(node, l);
  }

  /** Asks for a replacement; a node the operator cordoned hands its lease over instead of queuing again. */
  function requestReplace(node: PoolNode, origin: 'auto' | 'operator', reason: string, force?: boolean): LeaseAnswer {
    const holder = replaceNodeWorkflowId(pool, node.id);
    const cordon = `cordon/${node.id}`;
    if (budget.leaseOf(s.budget, cordon)) {
      s.budget = budget.transfer(s.budget, cordon, { holder, kind: 'replace' });
      const l = budget.leaseOf(s.budget, holder)!;
      Object.assign(l, { origin, reason, force });
      startLeaseWork(l);
      return { holder, granted: true, position: 0 };
    }
    s.budget = budget.release(s.budget, cordon);
    s.budget = budget.request(s.budget, { holder, kind: 'replace', nodeId: node.id, requestedAt: now(), origin, reason, ...(force === undefined ? {} : { force }) });
    grantPass();
    return answer(holder);
  }

  function answer(holder: string): LeaseAnswer {
    return { holder, granted: !!budget.leaseOf(s.budget, holder), position: budget.queuePosition(s.budget, holder) };
  }

  /** A replaceNode workflow started directly (CLI, Web UI) holds `replace/<pool>/<node>` as an external lease. */
  function isOutsideReplacement(holder: string): boolean {
    return holder.startsWith(`replace/${pool}/`);
  }

  /** When an outside replacement gives its lease back, the node is active again until the next probe says whether it still exists. */
  function outsideReplacementEnded(l: budget.LeaseRequest): void {
    const n = l.nodeId ? s.nodes[l.nodeId] : undefined;
    if (!n || !isOutsideReplacement(l.holder) || n.phase !== 'replacing') return;
    n.phase = 'active';
    n.badProbes = 0;
    n.retryAfter = now() + 2 * cfg.health.probeIntervalSeconds * 1000;
  }

  function dropAutomaticRequests(why: string): void {
    const auto = s.budget.queue.filter((r) => r.origin === 'auto');
    for (const r of auto) s.budget = budget.release(s.budget, r.holder);
    if (auto.length) event(`${auto.length} queued automatic replacement(s) dropped: ${why}`);
  }

  // ---- disruptive work ---------------------------------------------------------------------

  function startReplacement(node: PoolNode, l: budget.Lease): void {
    node.phase = 'replacing';
    s.replacements.started++;
    const reason = l.reason ?? 'unhealthy';
    event(`replacing (${l.origin ?? 'auto'}): ${reason}`, node.id);
    spawn(l.holder, async () => {
      try {
        const child = await startChild(replaceNode, {
          workflowId: l.holder,
          args: [{ pool, nodeId: node.id, reason: reason.slice(0, 500), drainTimeoutSeconds: cfg.health.drainTimeoutSeconds, force: l.force ?? cfg.health.forceDrain }],
          // A pool that is cancelled asks its replacements to stop (they uncordon if not yet terminated).
          parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
          staticSummary: `replace ${pool}/${node.id} (${l.origin ?? 'auto'})`,
        });
        const result = await child.result();
        delete s.nodes[node.id];
        addNode(result.replacementNodeId, 'healthy'); // the child waited until it was healthy and ready
        s.replacements.succeeded++;
        event(`replaced by ${result.replacementNodeId}`, node.id);
      } catch (err) {
        s.replacements.failed++;
        const n = s.nodes[node.id];
        if (n) {
          n.phase = 'active';
          n.badProbes = 0;
          n.failures = (n.failures ?? 0) + 1;
          n.retryAfter = now() + Math.min(600, 30 * 2 ** (n.failures - 1)) * 1000;
        }
        event(`replacement failed: ${causeMessage(err)}`, node.id);
      } finally {
        s.budget = budget.release(s.budget, l.holder);
      }
    });
  }

  function startScaleDown(node: PoolNode, l: budget.Lease): void {
    node.phase = 'leaving';
    const ref = { pool, nodeId: node.id };
    event('scaling down: cordon, drain, terminate', node.id);
    spawn(l.holder, async () => {
      try {
        await acts.cordonNode.executeWithOptions({ summary: `scale-down: cordon ${node.id}` }, [ref]);
        const drain = await drainActs().drainNode.executeWithOptions({ summary: `scale-down: drain ${node.id}` }, [
          { ...ref, timeoutSeconds: cfg.health.drainTimeoutSeconds, force: cfg.health.forceDrain },
        ]);
        if (drain.outcome === 'timed-out') {
          await acts.uncordonNode.executeWithOptions({ summary: `scale-down of ${node.id} abandoned: uncordon` }, [ref]);
          node.phase = 'active';
          node.retryAfter = now() + cfg.autoscaling.cooldownSeconds * 1000;
          event(`scale-down drain timed out with ${drain.inFlight} jobs running; node kept and uncordoned`, node.id);
          return;
        }
        await slowActs.terminateNode.executeWithOptions({ summary: `scale-down: terminate ${node.id}` }, [ref]);
        delete s.nodes[node.id];
        event(`scaled down (drain ${drain.outcome})`, node.id);
      } catch (err) {
        if (s.nodes[node.id]) {
          node.phase = 'active';
          node.retryAfter = now() + 60_000;
        }
        throw err;
      } finally {
        s.budget = budget.release(s.budget, l.holder);
      }
    });
  }

  function startCordon(node: PoolNode, l: budget.Lease): void {
    node.phase = 'cordoned';
    event('cordoned by operator', node.id);
    spawn(l.holder, async () => {
      await acts.cordonNode.executeWithOptions({ summary: `cordon ${node.id} (operator)` }, [{ pool, nodeId: node.id }]);
    });
  }

  function startProvision(): void {
    const key = `${workflowInfo().workflowId}/scale-up/${++s.provisionCounter}`;
    provisioningNow++;
    event(`scaling up: provisioning with key ${key}`);
    spawn(key, async () => {
      try {
        const r = await slowActs.provisionNode.executeWithOptions({ summary: `scale-up: provision (${key})` }, [{ pool, idempotencyKey: key }]);
        await slowActs.waitNodeHealthy.executeWithOptions({ summary: `scale-up: wait until ${r.nodeId} is healthy` }, [{ pool, nodeId: r.nodeId }]);
        addNode(r.nodeId, 'healthy');
        event('joined the pool (scale-up)', r.nodeId);
      } finally {
        provisioningNow--;
      }
    });
  }

  // ---- probing, membership, remediation, sizing ---------------------------------------------

  async function probe(): Promise<void> {
    const at = now();
    let r;
    try {
      r = await probeActs.probePool.executeWithOptions({ summary: `probe ${members().length} nodes` }, [
        { pool, digest: viewDigest(s.view), timeoutMs: cfg.health.probeTimeoutMs, concurrency: cfg.health.probeConcurrency },
      ]);
    } catch (err) {
      const cause = err instanceof ActivityFailure ? err.cause : err;
      if (cause instanceof ApplicationFailure && cause.type === INVALID_ARGUMENT) throw cause;
      event(`probe failed: ${causeMessage(err)}`);
      s.lastProbe = { at, probed: 0, tookMs: now() - at, full: false };
      return;
    }
    const before: ProbeView = s.view;
    s.view = r.full ? applyChanges({}, r.changes) : applyChanges(s.view, r.changes);
    s.idle = r.idle;
    s.lastProbe = { at, probed: r.probed, tookMs: r.tookMs, full: r.full };
    const t = now();
    const reasons = new Map(r.changes.filter((c) => c.reasons).map((c) => [c.id, c.reasons!]));
    for (const n of members()) {
      const h = s.view[n.id];
      if (!h) continue; // not seen by this probe (gone: handled by reconcile)
      const was = n.health;
      n.health = h;
      if (reasons.has(n.id)) n.reasons = reasons.get(n.id);
      if (h === 'healthy') delete n.reasons;
      if (h === 'unreachable') n.unreachableSince ??= t;
      else delete n.unreachableSince;
      n.badProbes = h === 'unhealthy' ? n.badProbes + 1 : 0;
      if (was !== h && before[n.id] !== h) {
        if ((h === 'unhealthy' || h === 'unreachable') && (n.phase === 'active' || n.phase === 'cordoned')) {
          s.breaker = recordBad(s.breaker, n.id, t);
          event(`${h}: ${(n.reasons ?? []).join('; ')}`, n.id);
        } else if (h === 'degraded') event(`degraded (reported, not replaced): ${(n.reasons ?? []).join('; ')}`, n.id);
        else if (h === 'healthy' && was !== 'unknown') event(`recovered (was ${was})`, n.id);
      }
    }
    const d = decide(s.autoscaler, { ...cfg.autoscaling, minNodes: cfg.minNodes, maxNodes: cfg.maxNodes }, r.utilization, t);
    s.autoscaler = d.state;
    if (d.change !== 'none') event(`autoscaler: ${d.state.lastDecision}`);
  }

  function reconcile(): void {
    const t = now();
    if (!s.initialized) {
      for (const id of Object.keys(s.view)) addNode(id);
      const live = Object.keys(s.view).length;
      s.autoscaler = clampDesired({ ...s.autoscaler, desired: cfg.desiredNodes ?? live }, cfg);
      s.initialized = true;
      event(`reconciled with the provider: ${live} live instance(s) adopted; desired ${s.autoscaler.desired}`);
      return;
    }
    const probedAt = s.lastProbe?.at ?? t;
    for (const n of members()) {
      // Nodes that joined while the probe ran may not be in its list yet.
      if (n.id in s.view || n.phase === 'replacing' || n.phase === 'leaving' || n.joinedAt >= probedAt) continue;
      delete s.nodes[n.id];
      s.budget = budget.release(s.budget, `cordon/${n.id}`);
      event('missing at the provider: removed; the pool will provision a replacement to hold its size', n.id);
    }
    // New instances appear while a replacement or scale-up runs; those tasks add them when done.
    const settled =
      ![...tasks.keys()].some((k) => k.startsWith('replace/') || k.includes('/scale-up/')) &&
      !s.budget.leases.some((l) => l.kind === 'external' && isOutsideReplacement(l.holder));
    if (!settled) return;
    for (const id of Object.keys(s.view)) {
      if (s.nodes[id] || s.claims?.[id]) continue;
      if (cfg.membership.unknownInstances === 'adopt') {
        addNode(id);
        event('unknown drydock-tagged instance adopted', id);
      } else if (!s.reportedUnknown.includes(id)) {
        s.reportedUnknown.push(id);
        event('unknown drydock-tagged instance (reported, not adopted)', id);
      }
    }
    s.reportedUnknown = s.reportedUnknown.filter((id) => id in s.view);
  }

  function remediate(): void {
    if (!s.initialized) return;
    const t = now();
    s.breaker = evaluateBreaker(s.breaker, cfg.disruption.breaker, { size: members().length, healthy: healthyCount(), minHealthy: minHealthy() }, t);
    if (s.breaker.open && s.breaker.openedAt === t) {
      event(`circuit breaker opened: ${s.breaker.reason}; automatic remediation stops until resumeRemediation`);
      dropAutomaticRequests('breaker open');
    }
    if (!autoRemediation()) return;
    for (const n of members()) {
      if (n.phase !== 'active' && n.phase !== 'cordoned') continue;
      if (n.retryAfter && n.retryAfter > t) continue;
      const holder = replaceNodeWorkflowId(pool, n.id);
      if (budget.leaseOf(s.budget, holder) || budget.queuePosition(s.budget, holder)) continue;
      let reason: string | undefined;
      if (n.health === 'unhealthy' && n.badProbes >= cfg.health.unhealthyAfter) reason = `unhealthy for ${n.badProbes} probes: ${(n.reasons ?? []).join('; ')}`;
      else if (n.health === 'unreachable' && n.unreachableSince !== undefined && t - n.unreachableSince >= cfg.health.unreachableAfterSeconds * 1000) {
        reason = `unreachable for ${Math.round((t - n.unreachableSince) / 1000)} s`;
      }
      if (reason) requestReplace(n, 'auto', reason);
    }
  }

  function size(): void {
    if (stopping || !s.initialized) return;
    const downQueued = s.budget.queue.filter((r) => r.kind === 'scale-down');
    const staying = members().filter((n) => n.phase !== 'leaving').length + provisioningNow;
    const desired = s.autoscaler.desired;
    let effective = staying - downQueued.length;
    // Cancel queued scale-downs first when the target went back up.
    while (effective < desired && downQueued.length) {
      s.budget = budget.release(s.budget, downQueued.pop()!.holder);
      effective++;
    }
    for (let i = effective; i < desired; i++) startProvision();
    if (effective > desired) {
      const t = now();
      const queuedNodes = new Set(s.budget.queue.map((r) => r.nodeId));
      const candidates = members()
        .filter((n) => (n.phase === 'active' || n.phase === 'cordoned') && !queuedNodes.has(n.id) && !(n.retryAfter && n.retryAfter > t))
        .map((n) => ({ ...n, cordoned: n.phase === 'cordoned', idle: s.idle.includes(n.id) }));
      for (let i = effective; i > desired; i--) {
        const victim = pickScaleDown(candidates);
        if (!victim) break;
        candidates.splice(candidates.indexOf(victim), 1);
        const holder = `scale-down/${victim.id}`;
        if (budget.leaseOf(s.budget, `cordon/${victim.id}`)) {
          s.budget = budget.transfer(s.budget, `cordon/${victim.id}`, { holder, kind: 'scale-down' });
          startLeaseWork(budget.leaseOf(s.budget, holder)!);
        } else {
          s.budget = budget.request(s.budget, { holder, kind: 'scale-down', nodeId: victim.id, requestedAt: t, origin: 'auto' });
        }
      }
    }
  }

  // ---- handlers ----------------------------------------------------------------------------

  function requireMember(nodeId: unknown): PoolNode {
    if (typeof nodeId !== 'string' || !NODE_ID.test(nodeId)) throw invalidArgument('nodeId', `expected a node id (${NODE_ID_HELP})`);
    const n = s.nodes[nodeId];
    if (!n) throw invalidArgument('nodeId', `'${nodeId}' is not a member of pool '${pool}' (members: ${Object.keys(s.nodes).slice(0, 10).join(', ') || 'none'})`);
    return n;
  }
  const objectArg = (v: unknown, field = 'input') => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalidArgument(field, 'expected a JSON object');
    return v as Record<string, unknown>;
  };

  setHandler(poolStatusQuery, () => status());

  setHandler(
    applySpecUpdate,
    (spec) => {
      cfg = parseFleetPoolSpec(spec);
      s.spec = spec;
      s.autoscaler = clampDesired({ ...s.autoscaler, ...(cfg.desiredNodes !== undefined ? { desired: cfg.desiredNodes } : {}) }, cfg);
      event('spec applied');
      dirty = true;
      return { desired: s.autoscaler.desired };
    },
    {
      validator: (spec) => {
        const next = parseFleetPoolSpec(spec);
        if (next.name !== pool) throw invalidArgument('name', `is '${pool}' for this pool; a spec for '${next.name}' belongs to workflow ${fleetPoolWorkflowId(next.name)}`);
      },
    },
  );

  setHandler(
    resizeUpdate,
    (r) => {
      s.spec = { ...s.spec, ...(r.minNodes !== undefined ? { minNodes: r.minNodes } : {}), ...(r.maxNodes !== undefined ? { maxNodes: r.maxNodes } : {}) };
      if (r.desiredNodes !== undefined) s.spec = { ...s.spec, desiredNodes: r.desiredNodes };
      cfg = parseFleetPoolSpec(s.spec);
      s.autoscaler = clampDesired({ ...s.autoscaler, ...(r.desiredNodes !== undefined ? { desired: r.desiredNodes } : {}) }, cfg);
      event(`resized: min ${cfg.minNodes}, max ${cfg.maxNodes}, desired ${s.autoscaler.desired}`);
      dirty = true;
      return { desired: s.autoscaler.desired, minNodes: cfg.minNodes, maxNodes: cfg.maxNodes };
    },
    {
      validator: (r) => {
        const o = objectArg(r);
        for (const k of Object.keys(o)) if (!['minNodes', 'maxNodes', 'desiredNodes'].includes(k)) throw invalidArgument(k, 'unknown field (allowed: minNodes, maxNodes, desiredNodes)');
        parseFleetPoolSpec({ ...s.spec, ...o });
      },
    },
  );

  setHandler(
    pauseRemediationUpdate,
    (r?: { reason?: string }) => {
      s.paused = { reason: r?.reason ?? 'paused by operator', at: now() };
      dropAutomaticRequests('remediation paused');
      event(`remediation paused: ${s.paused.reason}`);
      dirty = true;
      return { phase: phase() };
    },
    {
      validator: (r?: { reason?: string }) => {
        if (r === undefined) return;
        const o = objectArg(r);
        if (o.reason !== undefined && (typeof o.reason !== 'string' || o.reason.length > 500)) throw invalidArgument('reason', 'expected a string of at most 500 characters');
      },
    },
  );

  setHandler(resumeRemediationUpdate, () => {
    const was = phase();
    delete s.paused;
    s.breaker = resetBreaker();
    for (const n of members()) delete n.retryAfter;
    event(`remediation resumed by operator (was ${was})`);
    dirty = true;
    return { phase: phase() };
  });

  setHandler(
    cordonNodeUpdate,
    ({ nodeId }) => {
      const holder = `cordon/${nodeId}`;
      s.budget = budget.request(s.budget, { holder, kind: 'cordon', nodeId, requestedAt: now(), origin: 'operator' });
      grantPass();
      dirty = true;
      return answer(holder);
    },
    {
      validator: (r) => {
        const n = requireMember(objectArg(r).nodeId);
        if (n.phase !== 'active') throw invalidArgument('nodeId', `'${n.id}' is ${n.phase}; only an active node can be cordoned`);
      },
    },
  );

  setHandler(
    uncordonNodeUpdate,
    ({ nodeId }) => {
      const holder = `cordon/${nodeId}`;
      const held = !!budget.leaseOf(s.budget, holder);
      s.budget = budget.release(s.budget, holder);
      const n = s.nodes[nodeId];
      if (held && n) {
        n.phase = 'active';
        spawn(`uncordon/${nodeId}`, async () => {
          await acts.uncordonNode.executeWithOptions({ summary: `uncordon ${nodeId} (operator)` }, [{ pool, nodeId }]);
        });
      }
      event('uncordoned by operator', nodeId);
      dirty = true;
      return { nodeId };
    },
    {
      validator: (r) => {
        const n = requireMember(objectArg(r).nodeId);
        const holder = `cordon/${n.id}`;
        if (!budget.leaseOf(s.budget, holder) && !budget.queuePosition(s.budget, holder)) {
          throw invalidArgument('nodeId', `'${n.id}' was not cordoned through this pool (phase ${n.phase})`);
        }
      },
    },
  );

  setHandler(
    replaceNodeUpdate,
    ({ nodeId, reason, force }) => {
      dirty = true;
      return requestReplace(s.nodes[nodeId], 'operator', reason ?? 'manual (pool update)', force);
    },
    {
      validator: (r) => {
        const o = objectArg(r);
        const n = requireMember(o.nodeId);
        if (n.phase === 'replacing' || n.phase === 'leaving') throw invalidArgument('nodeId', `'${n.id}' is already ${n.phase}`);
        if (budget.queuePosition(s.budget, replaceNodeWorkflowId(pool, n.id))) throw invalidArgument('nodeId', `'${n.id}' is already queued for replacement`);
        if (o.reason !== undefined && (typeof o.reason !== 'string' || o.reason.length > 500)) throw invalidArgument('reason', 'expected a string of at most 500 characters');
        if (o.force !== undefined && typeof o.force !== 'boolean') throw invalidArgument('force', 'expected true or false');
      },
    },
  );

  setHandler(
    acquireLeaseUpdate,
    ({ holder, nodeId, ttlSeconds }) => {
      const queued = s.budget.queue.find((q) => q.holder === holder);
      if (budget.leaseOf(s.budget, holder)) s.budget = budget.renew(s.budget, holder, now());
      else if (queued && queued.kind !== 'external') {
        // The pool had queued this node's replacement itself; the outside replaceNode takes its place in line.
        s.budget = { ...s.budget, queue: s.budget.queue.map((q) => (q === queued ? { ...q, kind: 'external' as const, origin: 'workflow' as const, ttlSeconds: ttlSeconds ?? 1800 } : q)) };
        grantPass();
      } else {
        s.budget = budget.request(s.budget, { holder, kind: 'external', requestedAt: now(), origin: 'workflow', ttlSeconds: ttlSeconds ?? 1800, ...(nodeId ? { nodeId } : {}) });
        grantPass();
      }
      dirty = true;
      return answer(holder);
    },
    {
      validator: (r) => {
        const o = objectArg(r);
        if (typeof o.holder !== 'string' || !HOLDER.test(o.holder)) throw invalidArgument('holder', 'expected an id such as the caller\'s workflow id (letters, digits, . _ : / -, at most 200)');
        const held = budget.leaseOf(s.budget, o.holder);
        if (isOutsideReplacement(o.holder)) {
          const n = requireMember(o.nodeId);
          const expected = replaceNodeWorkflowId(pool, n.id);
          if (o.holder !== expected) throw invalidArgument('holder', `must be '${expected}' for node ${n.id}`);
          if (held && held.kind !== 'external') throw invalidArgument('holder', `the pool itself is already replacing ${n.id}`);
          if (!held && n.phase !== 'active' && n.phase !== 'cordoned') throw invalidArgument('nodeId', `'${n.id}' is ${n.phase}`);
        } else {
          if (/^(replace|scale-down|cordon)\//.test(o.holder)) throw invalidArgument('holder', `'${o.holder}' is reserved for the pool's own leases`);
          const any = held ?? s.budget.queue.find((q) => q.holder === o.holder);
          if (any && any.kind !== 'external') throw invalidArgument('holder', `'${o.holder}' is held by the pool itself`);
          if (o.nodeId !== undefined) requireMember(o.nodeId);
        }
        if (o.ttlSeconds !== undefined && !(Number.isInteger(o.ttlSeconds) && (o.ttlSeconds as number) >= 1 && (o.ttlSeconds as number) <= 86_400)) {
          throw invalidArgument('ttlSeconds', 'expected a whole number of seconds between 1 and 86400');
        }
      },
    },
  );

  setHandler(
    releaseLeaseUpdate,
    ({ holder }) => {
      const lease = budget.leaseOf(s.budget, holder);
      const released = !!lease || !!budget.queuePosition(s.budget, holder);
      s.budget = budget.release(s.budget, holder);
      if (lease) outsideReplacementEnded(lease);
      if (released) event(`lease released by ${holder}`);
      dirty = true;
      return { released };
    },
    {
      validator: (r) => {
        const o = objectArg(r);
        if (typeof o.holder !== 'string' || !HOLDER.test(o.holder)) throw invalidArgument('holder', 'expected the holder id used in acquireLease');
        const held = budget.leaseOf(s.budget, o.holder) ?? s.budget.queue.find((q) => q.holder === o.holder);
        if (held && held.kind !== 'external') throw invalidArgument('holder', `'${o.holder}' is held by the pool itself and released when its work ends`);
      },
    },
  );

  // ---- claims (blue-green) ------------------------------------------------------------------

  const holderArg = (o: Record<string, unknown>) => {
    if (typeof o.holder !== 'string' || !HOLDER.test(o.holder)) throw invalidArgument('holder', "expected the caller's workflow id (letters, digits, . _ : / -, at most 200)");
    if (/^(replace|scale-down|cordon)\//.test(o.holder)) throw invalidArgument('holder', `'${o.holder}' is reserved for the pool's own work`);
    return o.holder;
  };
  const idList = (v: unknown, field: string): string[] => {
    if (!Array.isArray(v) || v.length > 1000 || !v.every((id) => typeof id === 'string' && NODE_ID.test(id))) throw invalidArgument(field, `expected a list of node ids (${NODE_ID_HELP}), at most 1000`);
    return v as string[];
  };

  setHandler(
    claimNodesUpdate,
    ({ holder, nodeIds }) => {
      const fresh = nodeIds.filter((id) => claims()[id] !== holder);
      for (const id of nodeIds) claims()[id] = holder;
      if (fresh.length) event(`${fresh.length} instance(s) claimed by ${holder}: ${fresh.join(', ')}`);
      dirty = true;
      return { claimed: nodeIds };
    },
    {
      validator: (r) => {
        const o = objectArg(r);
        const holder = holderArg(o);
        for (const id of idList(o.nodeIds, 'nodeIds')) {
          if (s.nodes[id]) throw invalidArgument('nodeIds', `'${id}' is a member of pool '${pool}'; take members out with swapMembers`);
          if (claims()[id] && claims()[id] !== holder) throw invalidArgument('nodeIds', `'${id}' is claimed by ${claims()[id]}`);
        }
      },
    },
  );

  setHandler(
    swapMembersUpdate,
    ({ holder, admit, remove }) => {
      for (const id of admit) {
        delete claims()[id];
        addNode(id, s.view[id] ?? 'healthy');
      }
      for (const id of remove) {
        if (!s.nodes[id]) continue; // already swapped out (a retried call)
        delete s.nodes[id];
        claims()[id] = holder;
      }
      event(`membership switched by ${holder}: ${admit.length} in (${admit.join(', ')}), ${remove.length} out (${remove.join(', ')})`);
      dirty = true;
      return { members: members().length };
    },
    {
      validator: (r) => {
        const o = objectArg(r);
        const holder = holderArg(o);
        for (const id of idList(o.admit, 'admit')) {
          if (!s.nodes[id] && claims()[id] !== holder) throw invalidArgument('admit', `'${id}' is not claimed by ${holder}; claim it with claimNodes first`);
        }
        for (const id of idList(o.remove, 'remove')) {
          const n = s.nodes[id];
          if (!n) {
            if (claims()[id] !== holder) throw invalidArgument('remove', `'${id}' is not a member of pool '${pool}'`);
            continue;
          }
          if (n.phase !== 'active' && n.phase !== 'cordoned') throw invalidArgument('remove', `'${id}' is ${n.phase}`);
          if (budget.leaseForNode(s.budget, id)) throw invalidArgument('remove', `'${id}' holds a disruption lease (${budget.leaseForNode(s.budget, id)!.holder})`);
        }
      },
    },
  );

  setHandler(
    releaseClaimsUpdate,
    ({ holder, nodeIds }) => {
      const released = Object.keys(claims()).filter((id) => claims()[id] === holder && (!nodeIds || nodeIds.includes(id)));
      for (const id of released) delete claims()[id];
      if (released.length) event(`${released.length} claim(s) released by ${holder}`);
      dirty = true;
      return { released };
    },
    {
      validator: (r) => {
        const o = objectArg(r);
        holderArg(o);
        if (o.nodeIds !== undefined) idList(o.nodeIds, 'nodeIds');
      },
    },
  );

  // ---- status ------------------------------------------------------------------------------

  function status(): PoolStatus {
    const t = now();
    const ms = members();
    return {
      name: pool,
      phase: phase(),
      phaseReason: s.paused?.reason ?? (s.breaker.open ? s.breaker.reason : undefined),
      minNodes: cfg.minNodes,
      maxNodes: cfg.maxNodes,
      desired: s.autoscaler.desired,
      counts: {
        members: ms.length,
        healthy: ms.filter((n) => n.health === 'healthy').length,
        degraded: ms.filter((n) => n.health === 'degraded').length,
        unhealthy: ms.filter((n) => n.health === 'unhealthy').length,
        unreachable: ms.filter((n) => n.health === 'unreachable').length,
        disrupted: s.budget.leases.length,
        provisioning: provisioningNow,
      },
      nodes: ms.map(({ unreachableSince, retryAfter, ...n }) => ({
        ...n,
        ...(unreachableSince !== undefined ? { unreachableForSeconds: Math.round((t - unreachableSince) / 1000) } : {}),
      })),
      maxUnavailable: maxUnavailable(),
      minHealthy: minHealthy(),
      leases: s.budget.leases,
      queue: s.budget.queue,
      breaker: s.breaker,
      autoscaler: s.autoscaler,
      lastProbe: s.lastProbe ? { ...s.lastProbe, at: new Date(s.lastProbe.at).toISOString() } : undefined,
      maxDisrupted: s.maxDisrupted,
      replacements: s.replacements,
      runs: s.runs,
      events: s.events.slice(-30),
      claims: Object.entries(s.claims ?? {}).map(([nodeId, holder]) => ({ nodeId, holder })),
    };
  }

  function publish(): void {
    const p = phase();
    if (p !== lastPhase) {
      upsertSearchAttributes([
        { key: DRYDOCK_POOL, value: pool },
        { key: DRYDOCK_PHASE, value: p },
      ]);
      lastPhase = p;
    }
    const st = status();
    const c = st.counts;
    setCurrentDetails(
      [
        `**pool ${pool}** — **${p}**${st.phaseReason ? `: ${st.phaseReason}` : ''}`,
        `nodes ${c.members} (desired ${st.desired}, min ${st.minNodes}, max ${st.maxNodes}) · healthy ${c.healthy} · degraded ${c.degraded} · unhealthy ${c.unhealthy} · unreachable ${c.unreachable} · provisioning ${c.provisioning}`,
        `budget ${c.disrupted}/${st.maxUnavailable} disrupted, ${st.queue.length} waiting · replacements ${st.replacements.succeeded} done, ${st.replacements.failed} failed`,
        `autoscaler ${cfg.autoscaling.type}${st.autoscaler.utilization !== undefined ? ` · utilisation ${st.autoscaler.utilization} %` : ''}${st.autoscaler.lastDecision ? ` · ${st.autoscaler.lastDecision}` : ''}`,
        '',
        ...st.events.slice(-5).map((e) => `- ${e.at.slice(11, 19)} ${e.nodeId ? `\`${e.nodeId}\` ` : ''}${e.message}`),
      ].join('\n'),
    );
  }

  // ---- main loop ---------------------------------------------------------------------------

  if (!carried) {
    try {
      const where = await probeActs.describePoolConfig.executeWithOptions({ summary: `check the worker serves pool ${pool}` }, [{ pool }]);
      if (cfg.provider && cfg.provider !== where.provider) {
        throw invalidArgument('provider', `pool '${pool}' is served by provider '${where.provider}' in the worker's pools file, not '${cfg.provider}'`);
      }
    } catch (err) {
      throw err instanceof ActivityFailure && err.cause ? err.cause : err;
    }
    event(`pool manager started (${cfg.autoscaling.type} autoscaling, maxUnavailable ${JSON.stringify(cfg.disruption.maxUnavailable)})`);
  } else {
    event(`continued as new (run ${s.runs + 1})`);
  }

  for (;;) {
    const due = !s.lastProbe || now() >= s.lastProbe.at + cfg.health.probeIntervalSeconds * 1000;
    dirty = false;
    if (due) {
      await probe();
      reconcile();
    }
    const expired = budget.expire(s.budget, now());
    s.budget = expired.budget;
    for (const l of expired.expired) {
      outsideReplacementEnded(l);
      event(`lease of ${l.holder} expired after ${l.ttlSeconds} s without renewal`, l.nodeId);
    }
    remediate();
    size();
    grantPass();
    publish();

    if (!stopping && workflowInfo().continueAsNewSuggested) {
      stopping = true;
      event(`history is long: continuing as new once ${tasks.size} running task(s) finish`);
    }
    if (stopping && tasks.size === 0) {
      await condition(() => tasks.size === 0 && allHandlersFinished());
      s.runs++;
      await continueAsNew<typeof fleetPool>(s.spec, s);
    }
    const wait = s.lastProbe ? s.lastProbe.at + cfg.health.probeIntervalSeconds * 1000 - now() : 0;
    if (wait > 0) await condition(() => dirty || (stopping && tasks.size === 0), wait);
  }
}

function causeMessage(err: unknown): string {
  let e: unknown = err;
  while ((e instanceof ActivityFailure || e instanceof ChildWorkflowFailure) && e.cause) e = e.cause;
  return e instanceof Error ? e.message : String(e);
}
