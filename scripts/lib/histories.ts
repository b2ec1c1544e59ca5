import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { REPO_ROOT } from './paths.ts';
import { temporalBin } from './temporal.ts';

/**
 * The append-only replay corpus: test/fixtures/histories/<workflowType>/<commit>-<scenario>.json,
 * each `{ workflowId, history }` (the history as `temporal workflow show --output json` prints it),
 * listed in manifest.json with the commit whose code recorded it. Files are only ever added.
 */
export const HISTORIES_DIR = join(REPO_ROOT, 'test/fixtures/histories');
export const MANIFEST = join(HISTORIES_DIR, 'manifest.json');

export interface ManifestEntry {
  /** The full commit whose workflow code recorded the history. */
  recordedAt: string;
  scenario: string;
  /** 'current': replays against the checkout's code; 'recorded': against the code of recordedAt (pinned types only). */
  replayAgainst: 'current' | 'recorded';
}

export interface Manifest {
  about: string;
  histories: Record<string, ManifestEntry>;
}

export interface HistoryFixture {
  workflowId: string;
  history: { events: { eventType?: string; workflowExecutionStartedEventAttributes?: { workflowType?: { name?: string } } }[] };
}

export function readManifest(): Manifest {
  return JSON.parse(readFileSync(MANIFEST, 'utf8')) as Manifest;
}

/** Every history file under the corpus, as paths relative to it (`fleetPool/59a6666-….json`). */
export function historyFiles(): string[] {
  const out: string[] = [];
  for (const type of readdirSync(HISTORIES_DIR, { withFileTypes: true })) {
    if (!type.isDirectory()) continue;
    for (const f of readdirSync(join(HISTORIES_DIR, type.name))) if (f.endsWith('.json')) out.push(`${type.name}/${f}`);
  }
  return out.sort();
}

export function readFixture(file: string): HistoryFixture {
  return JSON.parse(readFileSync(join(HISTORIES_DIR, file), 'utf8')) as HistoryFixture;
}

/** The workflow type a history ran, from its first event. */
export function fixtureType(f: HistoryFixture): string | undefined {
  return f.history.events[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name;
}

function git(args: string[]): string {
  return execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
}

/**
 * The commit whose workflow code the recorder runs. Refuses uncommitted changes under workflows/:
 * a history must name code that exists in git, so it can be replayed against it later.
 */
export function recordingCommit(): string {
  const dirty = git(['status', '--porcelain', '--', 'workflows']);
  if (dirty) throw new Error(`record-histories: workflows/ has uncommitted changes; commit them first so the histories name the code that made them:\n${dirty}`);
  return git(['rev-parse', 'HEAD']);
}

export function scenarioFileName(type: string, commit: string, scenario: string): string {
  if (!/^[A-Za-z0-9-]+$/.test(scenario)) throw new Error(`scenario '${scenario}': letters, digits and '-' only`);
  return `${type}/${commit.slice(0, 7)}-${scenario}.json`;
}

/**
 * Saves a finished (or terminated) workflow's history as a new corpus file and its manifest entry.
 * Never overwrites: when the file exists (this commit already recorded this scenario) it says so
 * and keeps the old one.
 */
export function saveHistory(address: string, type: string, scenario: string, description: string, workflowId: string, commit: string, runId?: string): string | undefined {
  const file = scenarioFileName(type, commit, scenario);
  const path = join(HISTORIES_DIR, file);
  const manifest = readManifest();
  if (existsSync(path) || manifest.histories[file]) {
    console.log(`kept ${relative(REPO_ROOT, path)}: already recorded at this commit (histories are never overwritten)`);
    return undefined;
  }
  const args = ['workflow', 'show', '--workflow-id', workflowId, '--address', address, '--output', 'json', ...(runId ? ['--run-id', runId] : [])];
  const json = execFileSync(temporalBin(), args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify({ workflowId, history: JSON.parse(json) }, null, 1) + '\n', { flag: 'wx' });
  manifest.histories[file] = { recordedAt: commit, scenario: description, replayAgainst: 'current' };
  manifest.histories = Object.fromEntries(Object.entries(manifest.histories).sort(([a], [b]) => a.localeCompare(b)));
  writeFileSync(MANIFEST, JSON.stringify(manifest, null, 2) + '\n');
  console.log(`wrote ${relative(REPO_ROOT, path)}`);
  return file;
}

/**
 * The append-only check: every history content any commit held since the corpus began (the commit
 * that added its manifest) must still be in `root`'s working tree, byte for byte, under any name (a
 * move with identical content is no change). Returns what is missing as `<path> at <commit>`.
 * Needs the git history of `root` (a full clone).
 */
export function missingHistories(root: string = REPO_ROOT): string[] {
  const corpus = relative(REPO_ROOT, HISTORIES_DIR);
  const run = (args: string[]) => execFileSync('git', args, { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }).trim();
  const start = run(['log', '--diff-filter=A', '--format=%H', '--', `${corpus}/manifest.json`]).split('\n').filter(Boolean).pop();
  if (!start) return [];
  const committed = new Map<string, string>(); // blob id → where it was last seen
  for (const line of run(['ls-tree', '-r', start, '--', corpus]).split('\n')) {
    const m = /^\d+ blob ([0-9a-f]+)\t(.+\.json)$/.exec(line);
    if (m && !m[2].endsWith('/manifest.json')) committed.set(m[1], `${m[2]} at ${start.slice(0, 7)}`);
  }
  let commit = '';
  for (const line of run(['log', '--raw', '--no-renames', '--no-abbrev', '--format=commit %H', `${start}..HEAD`, '--', corpus]).split('\n')) {
    if (line.startsWith('commit ')) commit = line.slice(7, 14);
    const m = /^:\d+ \d+ [0-9a-f]+ ([0-9a-f]+) [AM]\t(.+\.json)$/.exec(line);
    if (m && !m[2].endsWith('/manifest.json')) committed.set(m[1], `${m[2]} at ${commit}`);
  }
  const files = run(['ls-files', '--cached', '--others', '--exclude-standard', '--', corpus]).split('\n').filter((f) => f.endsWith('.json') && !f.endsWith('/manifest.json'));
  const present = new Set(files.length ? run(['hash-object', ...files]).split('\n') : []);
  return [...committed].filter(([blob]) => !present.has(blob)).map(([, where]) => where);
}
