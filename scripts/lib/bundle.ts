import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { REPO_ROOT } from './paths.ts';

/** Where bundles are kept between processes, by the hash of what goes into them. */
const CACHE_DIR = process.env.DRYDOCK_BUNDLE_CACHE_DIR || join(tmpdir(), 'drydock-workflow-bundles');

let bundlePath: Promise<string> | undefined;

/** This checkout's workflows, bundled once per process (and reused across processes while the code is the same). */
export function workflowBundle(): Promise<string> {
  bundlePath ??= bundleWorkflowsOf(REPO_ROOT);
  return bundlePath;
}

/**
 * The workflows of the tree at `root` (its `workflows/` folder), bundled. Workflows import only
 * types from elsewhere, so that folder and the SDK's version are everything that goes into the
 * bundle: a bundle of the same contents is reused, which saves each test and script process the
 * seconds bundling takes.
 */
export async function bundleWorkflowsOf(root: string): Promise<string> {
  const file = join(CACHE_DIR, `${bundleKey(root)}.js`);
  if (existsSync(file)) return file;
  const { code } = await bundleWorkflowCode({ workflowsPath: join(root, 'workflows', 'index.ts'), logger: quietLogger });
  mkdirSync(CACHE_DIR, { recursive: true });
  // Written beside and renamed: a process that reads it concurrently sees all of it or none.
  const partial = `${file}.${process.pid}.partial`;
  writeFileSync(partial, code);
  renameSync(partial, file);
  return file;
}

function bundleKey(root: string): string {
  const hash = createHash('sha256');
  const sdk = JSON.parse(readFileSync(join(root, 'node_modules', '@temporalio', 'workflow', 'package.json'), 'utf8')) as { version: string };
  hash.update(`sdk ${sdk.version}\n`);
  for (const f of ['package.json', 'package-lock.json']) if (existsSync(join(root, f))) hash.update(readFileSync(join(root, f)));
  const dir = join(root, 'workflows');
  for (const path of filesUnder(dir).sort()) {
    hash.update(`${relative(dir, path)}\n`);
    hash.update(readFileSync(path));
  }
  return hash.digest('hex').slice(0, 32);
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : e.isFile() ? [join(dir, e.name)] : []));
}

const quietLogger = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error: console.error };
