import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { WORKFLOWS_PATH } from '../../workers/workflowsPath.ts';

let bundlePath: Promise<string> | undefined;

/** Bundles the workflows once per process, so each worker process it starts comes up fast. */
export function workflowBundle(): Promise<string> {
  bundlePath ??= (async () => {
    const { code } = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietLogger });
    const file = join(mkdtempSync(join(tmpdir(), 'drydock-bundle-')), 'workflows.js');
    writeFileSync(file, code);
    return file;
  })();
  return bundlePath;
}

const quietLogger = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error: console.error };
