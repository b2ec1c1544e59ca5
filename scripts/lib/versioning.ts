import type { Client } from '@temporalio/client';
import type { WorkerDeploymentVersion } from '@temporalio/common';
import { waitFor } from './waitFor.ts';

/**
 * The client side of Worker Deployment Versioning: make a version current, and read a deployment's
 * versions (which is current or ramping, drainage, open pinned workflows) for `drydock workers status`.
 */

const VERSION_STATUS = ['unspecified', 'inactive', 'current', 'ramping', 'draining', 'drained', 'created'] as const;
const DRAINAGE = ['unspecified', 'draining', 'drained'] as const;

export interface VersionReport {
  buildId: string;
  /** The server's status of the version: current, ramping, draining, drained, inactive or created. */
  status: (typeof VERSION_STATUS)[number];
  current: boolean;
  /** Percent of new workflows that go to this version, when it ramps. */
  rampingPercent?: number;
  /** For a version no longer current: whether pinned workflows may still run on it. */
  drainage?: 'draining' | 'drained';
  createdAt?: string;
  /** Pinned workflows still open on this version. */
  openPinned: { workflowId: string; type: string }[];
}

export interface DeploymentReport {
  deployment: string;
  current?: string;
  ramping?: { buildId: string; percent: number };
  versions: VersionReport[];
}

function iso(t: { seconds?: unknown; nanos?: number | null } | null | undefined): string | undefined {
  if (!t?.seconds) return undefined;
  return new Date(Number(t.seconds) * 1000 + Math.floor((t.nanos ?? 0) / 1e6)).toISOString();
}

/** Makes `version` current once its workers have polled (the server knows a version only from its pollers). */
export async function setCurrentVersion(client: Client, version: WorkerDeploymentVersion, opts: { timeoutMs?: number; identity?: string } = {}): Promise<void> {
  let lastError = '';
  await waitFor(
    async () => {
      try {
        await client.workflowService.setWorkerDeploymentCurrentVersion({
          namespace: client.options.namespace,
          deploymentName: version.deploymentName,
          buildId: version.buildId,
          identity: opts.identity ?? 'drydock',
          ignoreMissingTaskQueues: true,
        });
        return true;
      } catch (err) {
        lastError = (err as Error).message;
        if (/not found|no pollers|not exist|not yet|no Worker Deployment/i.test(lastError)) return false; // its workers have not polled yet
        throw err;
      }
    },
    opts.timeoutMs ?? 60_000,
    `version ${version.deploymentName}:${version.buildId} to be known to the server (${lastError})`,
    200,
  );
}

/** Workflow runs still open and pinned to `buildId` of `deployment`, from visibility. */
async function openPinned(client: Client, deployment: string, buildId: string): Promise<{ workflowId: string; type: string }[]> {
  const out: { workflowId: string; type: string }[] = [];
  const query = `TemporalWorkerDeploymentVersion = '${deployment}:${buildId}' AND TemporalWorkflowVersioningBehavior = 'Pinned' AND ExecutionStatus = 'Running'`;
  for await (const wf of client.workflow.list({ query })) out.push({ workflowId: wf.workflowId, type: wf.type });
  return out;
}

/** The deployment's versions, newest first; undefined when no worker of it ever polled. */
export async function deploymentReport(client: Client, deployment: string): Promise<DeploymentReport | undefined> {
  let info;
  try {
    ({ workerDeploymentInfo: info } = await client.workflowService.describeWorkerDeployment({ namespace: client.options.namespace, deploymentName: deployment }));
  } catch (err) {
    if (/not found/i.test((err as Error).message)) return undefined;
    throw err;
  }
  const routing = info?.routingConfig;
  const current = routing?.currentDeploymentVersion?.buildId ?? undefined;
  const rampingId = routing?.rampingDeploymentVersion?.buildId ?? undefined;
  const percent = routing?.rampingVersionPercentage ?? 0;
  const versions: VersionReport[] = [];
  for (const v of info?.versionSummaries ?? []) {
    const buildId = v.deploymentVersion?.buildId ?? String(v.version ?? '').split(/[:.]/).slice(1).join('.');
    const drainage = DRAINAGE[Number(v.drainageInfo?.status ?? v.drainageStatus ?? 0)];
    versions.push({
      buildId,
      status: VERSION_STATUS[Number(v.status ?? 0)] ?? 'unspecified',
      current: buildId === current,
      ...(buildId === rampingId ? { rampingPercent: percent } : {}),
      ...(drainage === 'draining' || drainage === 'drained' ? { drainage } : {}),
      createdAt: iso(v.createTime),
      openPinned: await openPinned(client, deployment, buildId),
    });
  }
  versions.sort((a, b) => (b.createdAt ?? '').localeCompare(a.createdAt ?? ''));
  return { deployment, current, ...(rampingId ? { ramping: { buildId: rampingId, percent } } : {}), versions };
}
