import type { Command } from 'commander';
import { DEFAULT_DEPLOYMENT } from '../../workers/versioning.ts';
import { deploymentReport, type DeploymentReport, type VersionReport } from '../lib/versioning.ts';
import { badInput, globals, output, withClient } from './runtime.ts';

/** One line per version: which is current or ramping, whether an old one has drained, and what still runs on it. */
export function renderWorkersStatus(r: DeploymentReport): string {
  const state = (v: VersionReport) =>
    v.current ? 'current' : v.rampingPercent !== undefined ? `ramping ${v.rampingPercent}%` : v.drainage === 'drained' ? 'drained (safe to stop its workers)' : v.drainage === 'draining' ? 'draining' : v.status;
  const lines = [`deployment ${r.deployment}: current ${r.current ?? '(none: new workflows go to unversioned workers)'}${r.ramping ? `, ramping ${r.ramping.buildId} at ${r.ramping.percent}%` : ''}`];
  for (const v of r.versions) {
    lines.push(`  ${v.buildId}  ${state(v)}  ${v.openPinned.length} pinned workflow(s) open${v.createdAt ? `  (first seen ${v.createdAt})` : ''}`);
    for (const w of v.openPinned.slice(0, 10)) lines.push(`      ${w.type}  ${w.workflowId}`);
    if (v.openPinned.length > 10) lines.push(`      … and ${v.openPinned.length - 10} more`);
  }
  return lines.join('\n');
}

export function registerWorkersCommands(program: Command): void {
  const workers = program.command('workers').description('the Worker Deployment the drydock workers run as (versions, drainage)');
  workers
    .command('status')
    .description("the deployment's versions: which is current (and ramping), the pinned workflows still open on each, and whether an old one has drained")
    .option('--deployment <name>', `deployment name (default: DRYDOCK_DEPLOYMENT or ${DEFAULT_DEPLOYMENT})`)
    .action(async (flags: { deployment?: string }, cmd: Command) => {
      const o = globals(cmd);
      const name = flags.deployment ?? process.env.DRYDOCK_DEPLOYMENT ?? DEFAULT_DEPLOYMENT;
      const report = await withClient(o, (client) => deploymentReport(client, name));
      if (!report) throw badInput(`deployment '${name}': no worker of it has polled this namespace; start the workers, or check --deployment / DRYDOCK_DEPLOYMENT`);
      output(o, report, () => renderWorkersStatus(report));
    });
}
