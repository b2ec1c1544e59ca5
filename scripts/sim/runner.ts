/** Runs a parsed scenario's steps in order on a SimStack, printing each with its timing. */
import { setTimeout as sleep } from 'node:timers/promises';
import type { SimFault } from '../fleet-sim/simulator.ts';
import { backupWorkflowId, fleetPoolWorkflowId, rollingUpdateWorkflowId, trainingJobWorkflowId } from '../../workflows/common/ids.ts';
import { holds, type Condition } from './expr.ts';
import { liveNodes, valueOf, type Observer, type Started } from './observe.ts';
import type { NodeFaultKind, Scenario, Step, Target } from './scenario.ts';
import type { SimStack } from './stack.ts';

export class StepFailed extends Error {
  constructor(readonly step: Step, message: string) {
    super(`step ${step.index}${step.line ? ` (line ${step.line})` : ''} '${step.label}' failed: ${message}`);
  }
}

/** Node ids a target names (live nodes, sorted by id). */
export function targetNodes(stack: SimStack, t: Target): string[] {
  const nodes = liveNodes(stack.sim, t.pool);
  if (typeof t.node === 'number') return nodes[t.node] ? [nodes[t.node].id] : [];
  if (typeof t.node === 'string') return nodes.some((n) => n.id === t.node) ? [t.node] : [];
  if (t.nodes !== undefined) return nodes.slice(0, t.nodes).map((n) => n.id);
  if (t.rack !== undefined) return nodes.filter((n) => n.tags.rack === String(t.rack)).map((n) => n.id);
  if (t.zone !== undefined) return nodes.filter((n) => n.zone === t.zone).map((n) => n.id);
  return nodes.map((n) => n.id);
}

/** The simulator fault for a node fault kind. */
export function simFault(kind: NodeFaultKind, o: { gpu?: number; code?: number; celsius?: number; persistent?: boolean; seconds?: number } = {}): SimFault {
  const gpu = o.gpu ?? 0;
  const persistent = o.persistent ?? false;
  switch (kind) {
    case 'xid': return { kind: 'xid', gpu, code: o.code ?? 79, persistent };
    case 'thermal': return { kind: 'temperature', gpu, celsius: o.celsius ?? 96, persistent };
    case 'ecc': return { kind: 'ecc', gpu, uncorrected: 1, persistent };
    case 'missing-gpu': return { kind: 'missing', gpu, persistent };
    case 'smi-hang': return { kind: 'smi-hang', gpu, persistent };
    case 'agent-crash': return { kind: 'crash', seconds: o.seconds ?? 5 };
    case 'unreachable': return { kind: 'unreachable' };
    case 'dead': return { kind: 'dead' };
  }
}

export class ScenarioRunner {
  readonly started = new Map<string, Started>();
  readonly observer: Observer;
  private t0 = Date.now();

  constructor(readonly scenario: Scenario, readonly stack: SimStack, private readonly log: (line: string) => void = (l) => console.log(l)) {
    this.observer = { client: () => stack.client, sim: stack.sim, token: stack.token, started: this.started };
    for (const p of scenario.fleet.pools) this.started.set(`pool.${p.name}`, { kind: 'pool', workflowId: fleetPoolWorkflowId(p.name) });
  }

  /** Runs every step; throws StepFailed on the first that fails. */
  async run(): Promise<void> {
    this.t0 = Date.now();
    for (const step of this.scenario.steps) {
      const t = Date.now();
      const stamp = `[${((t - this.t0) / 1000).toFixed(1).padStart(6)} s]`;
      try {
        const note = await this.step(step);
        this.log(`${stamp} step ${step.index}: ${step.label} … ok (${((Date.now() - t) / 1000).toFixed(1)} s)${note ? `: ${note}` : ''}`);
      } catch (err) {
        this.log(`${stamp} step ${step.index}: ${step.label} … FAILED after ${((Date.now() - t) / 1000).toFixed(1)} s`);
        throw err instanceof StepFailed ? err : new StepFailed(step, (err as Error).message);
      }
    }
  }

  private async failing(conds: Condition[]): Promise<{ c: Condition; actual: unknown }[]> {
    const out: { c: Condition; actual: unknown }[] = [];
    for (const c of conds) {
      const actual = await valueOf(this.observer, c);
      if (!holds(c, actual)) out.push({ c, actual });
    }
    return out;
  }

  private async step(step: Step): Promise<string | void> {
    const { stack } = this;
    switch (step.action) {
      case 'start': {
        const { kind, as } = step;
        const input: Record<string, unknown> = { ...step.input };
        let workflowId: string;
        if (kind === 'pool') workflowId = fleetPoolWorkflowId(String(input.name));
        else if (kind === 'rollout') workflowId = rollingUpdateWorkflowId(String(input.pool), as);
        else if (kind === 'backup') workflowId = backupWorkflowId(String(input.name), new Date());
        else {
          workflowId = trainingJobWorkflowId(String(input.name));
          input.checkpoint ??= { uri: `file://${stack.work}/checkpoints` };
          input.trainerQueue ??= stack.trainerQueue;
        }
        const workflowType = { pool: 'fleetPool', rollout: 'rollingUpdate', backup: 'backup', training: 'trainingJob' }[kind];
        await stack.client.workflow.start(workflowType, { taskQueue: stack.taskQueue, workflowId, args: [input] });
        this.started.set(`${kind}.${as}`, { kind, workflowId });
        return workflowId;
      }
      case 'inject': {
        if (!('target' in step)) {
          stack.sim.providerFault({ kind: step.fault, seconds: step.seconds });
          return;
        }
        const ids = targetNodes(stack, step.target);
        if (ids.length === 0) throw new StepFailed(step, 'the target names no live node');
        const fault = simFault(step.fault, step);
        for (const id of ids) await stack.sim.fault(id, fault);
        return ids.join(', ');
      }
      case 'recover': {
        if (step.fault === 'capacity' || step.fault === 'throttle') return void stack.sim.clearProviderFault(step.fault);
        if (step.fault === 'all') stack.sim.clearProviderFault();
        const ids = step.target ? targetNodes(stack, step.target) : [];
        for (const id of ids) {
          const restart = step.fault === 'all' || step.fault === 'agent-crash' || step.fault === 'unreachable';
          if (restart) await stack.sim.fault(id, { kind: 'revive' });
          if (step.fault !== 'agent-crash' && step.fault !== 'unreachable') await stack.sim.fault(id, { kind: 'recover' }).catch(() => {});
        }
        return ids.length ? `${ids.length} nodes` : undefined;
      }
      case 'kill':
        if (step.worker === 'control') await stack.killControl(step.restart, step.restartAfterSeconds);
        else await stack.killTrainer(step.which, step.restart, step.restartAfterSeconds);
        return;
      case 'restart':
        await stack.restartTemporal(step.downSeconds);
        return;
      case 'wait': {
        const until = Date.now() + step.timeoutSeconds * 1000;
        for (;;) {
          const bad = await this.failing(step.conditions);
          if (bad.length === 0) return;
          if (Date.now() > until) throw new StepFailed(step, `timed out after ${step.timeoutSeconds} s: ${bad.map((b) => `${b.c.text} (is ${JSON.stringify(b.actual)})`).join('; ')}`);
          await sleep(250);
        }
      }
      case 'assert': {
        const bad = await this.failing(step.conditions);
        if (bad.length) throw new StepFailed(step, bad.map((b) => `assertion ${b.c.text} does not hold (is ${JSON.stringify(b.actual)})`).join('; '));
        return;
      }
      case 'update':
      case 'signal': {
        const wf = this.started.get(step.target)!;
        const handle = stack.client.workflow.getHandle(wf.workflowId);
        if (step.action === 'signal') await handle.signal(step.name, ...step.args);
        // The update's argument types are the workflow's; a scenario passes them as written.
        else return JSON.stringify(await handle.executeUpdate(step.name, { args: step.args as [] }));
        return;
      }
    }
  }
}
