import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { WorkerDeploymentVersion } from '@temporalio/common';
import type { WorkerDeploymentOptions } from '@temporalio/worker';
import { WorkerConfigError } from './configError.ts';

/**
 * Worker Deployment Versioning: every drydock worker (control and trainer) polls as one version
 * of a Worker Deployment, `<DRYDOCK_DEPLOYMENT>:<DRYDOCK_BUILD_ID>`. Workflow types that finish
 * are pinned to the version that started them; fleetPool auto-upgrades (each type says so beside
 * its code). docs/operations.md has the upgrade runbook.
 */
export const DEFAULT_DEPLOYMENT = 'drydock';

const CHECKOUT = fileURLToPath(new URL('..', import.meta.url));
/** Temporal's limit is 255 bytes; the server joins deployment and build id with '.' (and ':' in visibility), so a deployment name has neither. */
const DEPLOYMENT_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$/;
const BUILD_ID = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,149}$/;

function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

function git(args: string[]): string | undefined {
  try {
    return execFileSync('git', args, { cwd: CHECKOUT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined; // not a checkout (an image built without .git), or git is missing
  }
}

/**
 * The build id a checkout runs as when DRYDOCK_BUILD_ID is unset: `<package version>-<commit>`,
 * plus `-dirty.<hash of the uncommitted diff>` when tracked files differ from the commit, so two
 * different working trees never share a build id. Undefined outside a git checkout.
 */
export function checkoutBuildId(): string | undefined {
  const commit = git(['rev-parse', '--short=12', 'HEAD']);
  if (!commit) return undefined;
  const diff = git(['diff', 'HEAD']);
  const dirty = diff ? `-dirty.${createHash('sha256').update(diff).digest('hex').slice(0, 8)}` : '';
  return `${packageVersion()}-${commit}${dirty}`;
}

/** The version this worker polls as, from DRYDOCK_DEPLOYMENT and DRYDOCK_BUILD_ID; throws WorkerConfigError naming what to set. */
export function loadWorkerVersion(env: NodeJS.ProcessEnv, defaultBuildId: () => string | undefined = checkoutBuildId): WorkerDeploymentVersion {
  const deploymentName = env.DRYDOCK_DEPLOYMENT ?? DEFAULT_DEPLOYMENT;
  if (!DEPLOYMENT_NAME.test(deploymentName)) {
    throw new WorkerConfigError(`DRYDOCK_DEPLOYMENT: '${deploymentName}' is not a usable deployment name (letters, digits, '_', '-'; at most 100; default '${DEFAULT_DEPLOYMENT}')`);
  }
  const raw = env.DRYDOCK_BUILD_ID;
  if (raw !== undefined && raw !== '') {
    if (!BUILD_ID.test(raw)) {
      throw new WorkerConfigError(`DRYDOCK_BUILD_ID: '${raw}' is not a usable build id (letters, digits, '.', '_', '+', '-', starting with a letter or digit; at most 150), e.g. 0.1.0-3f2a9c1`);
    }
    return { deploymentName, buildId: raw };
  }
  const buildId = defaultBuildId();
  if (!buildId) {
    throw new WorkerConfigError('DRYDOCK_BUILD_ID: not set, and this is not a git checkout to take the commit from; set it to the build you deploy (e.g. the image tag, 0.1.0-3f2a9c1)');
  }
  return { deploymentName, buildId };
}

/** `<deployment>:<build id>`, as the Temporal CLI and Web UI show a version. */
export function versionString(v: WorkerDeploymentVersion): string {
  return `${v.deploymentName}:${v.buildId}`;
}

/**
 * Worker options for `version`. Workflow types declare their own behaviour (setWorkflowOptions
 * beside each workflow); the default, for any type that forgets, is the safe one: pinned.
 */
export function deploymentOptions(version: WorkerDeploymentVersion): WorkerDeploymentOptions {
  return { useWorkerVersioning: true, version, defaultVersioningBehavior: 'PINNED' };
}
