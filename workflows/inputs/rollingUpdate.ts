import { invalidArgument } from '../common/errors.ts';
import {
  amount,
  nested,
  optionalBoolean,
  optionalInteger,
  optionalNumber,
  optionalString,
  POOL_NAME,
  POOL_NAME_HELP,
  rejectUnknown,
  requireObject,
  requireString,
  section,
  type Amount,
  type Obj,
} from './validate.ts';

/**
 * Input of the `rollingUpdate` workflow (public API, workflow id `rollout/<pool>/<id>`): rolls a
 * model across a pool's nodes in health-gated batches, or blue-green. See docs/rollouts.md.
 */
export interface RollingUpdateInput {
  pool: string;
  /** What every node should serve at the end: a model file on the nodes (path or file:// URI) and its sha256. */
  target: { model: { uri: string; sha256: string } };
  strategy?: 'rolling' | 'blueGreen';
  /** Rolling: most of this rollout's nodes out of service at once (count or "25%"); the pool's budget applies too. */
  maxUnavailable?: number | string;
  /** Blue-green: most green nodes provisioning at once (count or percent of the pool). */
  maxSurge?: number | string;
  /** Rolling: batches and pauses in order; nodes left after the last step go in batches of maxUnavailable. */
  steps?: RolloutStep[];
  /** Checks after every batch (and of the green set before the switch). */
  analysis?: {
    /** Prompt of the smoke generation sent to every updated node. */
    prompt?: string;
    maxTokens?: number;
    /** A substring the generated text must contain. */
    expect?: string;
    /** A smoke generation slower than this counts as a failure. */
    maxLatencyMs?: number;
    /** How long to watch the updated nodes after each batch; 0 checks once. */
    intervalSeconds?: number;
    /** Seconds between rounds of checks within the interval. */
    everySeconds?: number;
    /** More failed checks than this in one analysis fails it. */
    failureLimit?: number;
    /** This many failed checks in a row on one node fails it. */
    consecutiveErrorLimit?: number;
    /**
     * Client traffic on the analysed nodes during the analysis (their agents' inference requests):
     * a larger share of 5xx answers than this (0-1) fails it.
     */
    maxErrorRate?: number;
    /** Fewer client requests than this in an analysis are too few to judge the error rate. */
    minRequests?: number;
  };
  /** When a node or an analysis fails: roll updated nodes back to their previous model, or pause for an operator. */
  onFailure?: 'rollback' | 'pause';
  drainTimeoutSeconds?: number;
  /** On drain timeout: true cancels remaining work; false (default) fails the node. */
  forceDrain?: boolean;
  /** Blue-green: seconds the blue set is kept (cordoned, instant rollback possible) after the switch. */
  scaleDownDelaySeconds?: number;
  /** Blue-green: wait for `promote` before switching traffic to green. */
  pauseBeforeSwitch?: boolean;
}

export type RolloutStep = { batch: number | string } | { pause: { seconds?: number } };

export type ModelRef = { uri: string; sha256: string };

export type ResolvedStep = { batch: Amount } | { pause: { seconds?: number } };

export interface RollingUpdateConfig {
  pool: string;
  target: { model: ModelRef };
  strategy: 'rolling' | 'blueGreen';
  maxUnavailable: Amount;
  maxSurge: Amount;
  steps: ResolvedStep[];
  analysis: {
    prompt: string;
    maxTokens: number;
    expect?: string;
    maxLatencyMs: number;
    intervalSeconds: number;
    everySeconds: number;
    failureLimit: number;
    consecutiveErrorLimit: number;
    maxErrorRate: number;
    minRequests: number;
  };
  onFailure: 'rollback' | 'pause';
  drainTimeoutSeconds: number;
  forceDrain: boolean;
  scaleDownDelaySeconds: number;
  pauseBeforeSwitch: boolean;
}

/** Every default of the rollout input, in one place (documented in docs/rollouts.md). */
export const ROLLING_UPDATE_DEFAULTS = {
  strategy: 'rolling',
  maxUnavailable: { count: 1 },
  maxSurge: { percent: 100 },
  analysis: { prompt: 'Say hello.', maxTokens: 8, maxLatencyMs: 10_000, intervalSeconds: 30, everySeconds: 5, failureLimit: 0, consecutiveErrorLimit: 3, maxErrorRate: 0.05, minRequests: 20 },
  onFailure: 'rollback',
  drainTimeoutSeconds: 300,
  forceDrain: false,
  scaleDownDelaySeconds: 300,
  pauseBeforeSwitch: false,
} as const;

export const ROLLOUT_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const SHA256 = /^[0-9a-fA-F]{64}$/;

/** The `<id>` of `rollout/<pool>/<id>`, or an InvalidArgument naming the workflow id. */
export function rolloutIdFrom(workflowId: string, pool: string): string {
  const prefix = `rollout/${pool}/`;
  const id = workflowId.startsWith(prefix) ? workflowId.slice(prefix.length) : '';
  if (!ROLLOUT_ID.test(id)) {
    throw invalidArgument('workflowId', `must be '${prefix}<id>' (id: letters, digits, . _ -, at most 64), got '${workflowId}', so that one pool's rollouts are found together`);
  }
  return id;
}

/** A model on the nodes: `{uri, sha256}` (also the pool spec's `serving.model`). */
export function modelRef(obj: Obj): ModelRef {
  rejectUnknown(obj, ['uri', 'sha256']);
  const uri = requireString(obj, 'uri');
  if (uri.length > 1024) throw invalidArgument('uri', 'must be at most 1024 characters');
  if (!uri.startsWith('/') && !uri.startsWith('file:///')) throw invalidArgument('uri', `expected an absolute path or file:/// URI of the model on the nodes, got '${uri}'`);
  if (uri.split('/').includes('..')) throw invalidArgument('uri', "must not contain '..'");
  const sha256 = requireString(obj, 'sha256', SHA256, "the model file's sha256 as 64 hex digits");
  return { uri, sha256: sha256.toLowerCase() };
}

function steps(raw: unknown): ResolvedStep[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) throw invalidArgument('steps', 'expected a list such as [{"batch": 1}, {"pause": {}}, {"batch": "50%"}]');
  if (raw.length > 100) throw invalidArgument('steps', 'at most 100 steps');
  return raw.map((step, i) =>
    nested(`steps[${i}].`, () => {
      const s = requireObject(step, 'step');
      rejectUnknown(s, ['batch', 'pause']);
      if ((s.batch === undefined) === (s.pause === undefined)) throw invalidArgument('step', 'expected exactly one of batch or pause');
      if (s.batch !== undefined) return { batch: amount(s, 'batch', 'batch', 1, { count: 1 }) };
      const p = nested('pause.', () => requireObject(s.pause, 'pause'));
      nested('pause.', () => rejectUnknown(p, ['seconds']));
      if (p.seconds === undefined) return { pause: {} };
      return { pause: { seconds: nested('pause.', () => optionalInteger(p, 'seconds', 0, 7 * 86_400, 0)) } };
    }),
  );
}

/** Validates a rollout input and fills in defaults; every error names the field (e.g. `analysis.failureLimit`). */
export function parseRollingUpdateInput(raw: unknown): RollingUpdateConfig {
  const D = ROLLING_UPDATE_DEFAULTS;
  const obj = requireObject(raw, 'input');
  rejectUnknown(obj, ['pool', 'target', 'strategy', 'maxUnavailable', 'maxSurge', 'steps', 'analysis', 'onFailure', 'drainTimeoutSeconds', 'forceDrain', 'scaleDownDelaySeconds', 'pauseBeforeSwitch']);
  const pool = requireString(obj, 'pool', POOL_NAME, POOL_NAME_HELP);
  if (obj.target === undefined) throw invalidArgument('target', 'is required, e.g. {"model": {"uri": "/models/m.gguf", "sha256": "…"}}');
  const target = nested('target.', () => {
    const t = requireObject(obj.target, 'target');
    rejectUnknown(t, ['model']);
    if (t.model === undefined) throw invalidArgument('model', 'is required (agent versions are not a rollout target yet)');
    return { model: nested('model.', () => modelRef(requireObject(t.model, 'model'))) };
  });
  const strategy = obj.strategy ?? D.strategy;
  if (strategy !== 'rolling' && strategy !== 'blueGreen') throw invalidArgument('strategy', `expected 'rolling' or 'blueGreen', got ${JSON.stringify(strategy)}`);
  const onFailure = obj.onFailure ?? D.onFailure;
  if (onFailure !== 'rollback' && onFailure !== 'pause') throw invalidArgument('onFailure', `expected 'rollback' or 'pause', got ${JSON.stringify(onFailure)}`);
  const parsedSteps = steps(obj.steps);
  if (strategy === 'blueGreen' && parsedSteps.length) throw invalidArgument('steps', "apply to strategy 'rolling' only; blue-green switches all at once (use pauseBeforeSwitch to wait for promote)");

  const as = section(obj, 'analysis');
  const analysis = nested('analysis.', () => {
    rejectUnknown(as, ['prompt', 'maxTokens', 'expect', 'maxLatencyMs', 'intervalSeconds', 'everySeconds', 'failureLimit', 'consecutiveErrorLimit', 'maxErrorRate', 'minRequests']);
    const A = D.analysis;
    const prompt = optionalString(as, 'prompt', 2000) ?? A.prompt;
    if (prompt === '') throw invalidArgument('prompt', 'must not be empty');
    const expect = optionalString(as, 'expect', 500);
    return {
      prompt,
      maxTokens: optionalInteger(as, 'maxTokens', 1, 256, A.maxTokens),
      ...(expect ? { expect } : {}),
      maxLatencyMs: optionalInteger(as, 'maxLatencyMs', 1, 600_000, A.maxLatencyMs),
      intervalSeconds: optionalInteger(as, 'intervalSeconds', 0, 86_400, A.intervalSeconds),
      everySeconds: optionalInteger(as, 'everySeconds', 1, 3600, A.everySeconds),
      failureLimit: optionalInteger(as, 'failureLimit', 0, 10_000, A.failureLimit),
      consecutiveErrorLimit: optionalInteger(as, 'consecutiveErrorLimit', 1, 10_000, A.consecutiveErrorLimit),
      maxErrorRate: optionalNumber(as, 'maxErrorRate', 0, 1, A.maxErrorRate),
      minRequests: optionalInteger(as, 'minRequests', 1, 1_000_000, A.minRequests),
    };
  });

  return {
    pool,
    target,
    strategy,
    maxUnavailable: amount(obj, 'maxUnavailable', 'maxUnavailable', 1, D.maxUnavailable),
    maxSurge: amount(obj, 'maxSurge', 'maxSurge', 1, D.maxSurge),
    steps: parsedSteps,
    analysis,
    onFailure,
    drainTimeoutSeconds: optionalInteger(obj, 'drainTimeoutSeconds', 0, 86_400, D.drainTimeoutSeconds),
    forceDrain: optionalBoolean(obj, 'forceDrain', D.forceDrain),
    scaleDownDelaySeconds: optionalInteger(obj, 'scaleDownDelaySeconds', 0, 7 * 86_400, D.scaleDownDelaySeconds),
    pauseBeforeSwitch: optionalBoolean(obj, 'pauseBeforeSwitch', D.pauseBeforeSwitch),
  };
}
