import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { basename, dirname, join, posix } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { REPO_ROOT } from '../../scripts/lib/paths.ts';
import { ON_CI, requirePresent, skipUnlessCi } from '../helpers/required.ts';

/**
 * What users deploy with installs and runs: every Dockerfile under deploy/docker and every GitHub
 * Actions workflow under .github/workflows, read as written and run in a clean clone of this checkout.
 *
 * Docker is not available here, so each Dockerfile is run the way `docker build` would run it, in
 * a directory standing in for the image's filesystem: FROM starts a fresh one (the previous stage's
 * stays readable for COPY --from), WORKDIR / COPY / ARG / ENV / RUN act on it, and the absolute
 * paths of the image (/app, /usr/local, /root, /opt, /etc, /var, /home) are that directory's.
 * Then the image's CMD is started as `docker run` would (only the image's ENV), and the program it
 * starts is checked for what it needs first (the agent's llama.cpp binary, the trainer's TensorFlow).
 * Each workflow job runs its `run:` steps in its own clone with the shell GitHub uses (`bash -e`
 * unless a shell is set), `${{ }}` expressions evaluated against test values.
 *
 * Test values and shortcuts, each because the real thing is not here or would take minutes:
 * - npm installs prefer the npm cache (npm_config_prefer_offline), copied into each stand-in home:
 *   the base image's empty /root/.npm, or what setup-node's `cache: npm` restores;
 * - an install command that several artifacts run with the same inputs (package.json, the lock,
 *   the script it names) runs once, in a copy of the first one's directory; every artifact then gets
 *   that node_modules (hard links, as a Docker layer cache would give it) and runs its own line as
 *   written, so ensure-deps.sh finds its stamp and installs nothing. A different command, or the
 *   same command with other inputs, runs for real: `npm ci` is refused here as on a clean clone;
 * - `apt-get` lines (the trainer's compilers) are not run: no root and no Debian mirror here. What
 *   they install is needed only to compile native TensorFlow, which install-tfjs-native.sh takes
 *   from the build cache this machine's `npm test` made (copied in as DRYDOCK_CACHE_DIR holds it);
 *   without that cache the trainer's build stops there (skipped here, a failure under CI=true);
 * - there is no Temporal cluster: TEMPORAL_ADDRESS is an address nobody listens on, and every
 *   `drydock` step must exit 3 saying it cannot reach that address. The CLI validates its flags
 *   before it connects (a bad flag exits 2), so exit 3 shows the bin is on PATH, its dependencies
 *   load, the step's arguments are accepted and the job's env reaches it; the pipe around a step
 *   (`| tee`) must keep that exit status, as the job's gate needs.
 */

type Env = Record<string, string>;

const TEMPORAL_UNREACHABLE = '127.0.0.1:1';
const NODE_DIR = dirname(process.execPath);
const SYSTEM_PATH = `${NODE_DIR}:/usr/bin:/bin`;
const HOST_NPM_CACHE = join(homedir(), '.npm', '_cacache');
const HOST_DRYDOCK_CACHE = process.env.DRYDOCK_CACHE_DIR ?? join(homedir(), '.cache', 'drydock');
/** Proxy settings pass through, as build args and runner env would carry them. */
const PROXY_ENV: Env = Object.fromEntries(
  Object.entries(process.env).filter((e): e is [string, string] => /^(https?|no)_proxy$/i.test(e[0]) && e[1] !== undefined),
);
const NPM_ENV: Env = { npm_config_prefer_offline: 'true', npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };

/** GitHub contexts the workflows read; inputs without a default take these. */
const TEST_CONTEXT = {
  github: { run_id: '4242' },
  vars: { TEMPORAL_ADDRESS: TEMPORAL_UNREACHABLE, TEMPORAL_NAMESPACE: 'drydock-test' },
  secrets: { TEMPORAL_API_KEY: 'test-api-key', DRYDOCK_CODEC_KEY: randomBytes(32).toString('base64') },
};
const TEST_INPUTS: Env = { model_uri: 'file:///models/demo-v2.gguf', model_sha256: 'ab'.repeat(32) };

const DOCKERFILES = readdirSync(join(REPO_ROOT, 'deploy/docker')).filter((f) => f.endsWith('.Dockerfile')).sort().map((f) => `deploy/docker/${f}`);
const WORKFLOWS = readdirSync(join(REPO_ROOT, '.github/workflows')).filter((f) => /\.ya?ml$/.test(f)).sort().map((f) => `.github/workflows/${f}`);

function missingTools(): string | false {
  for (const [tool, args] of [['git', ['--version']], ['npm', ['--version']], ['bash', ['--version']], ['cp', ['--version']]] as const) {
    try {
      execFileSync(tool, args, { stdio: 'ignore' });
    } catch {
      return `${tool} is not installed`;
    }
  }
  return false;
}
const MISSING_TOOL = missingTools();

// ---------------------------------------------------------------------------------------------
// Running commands

interface Ran {
  code: number | null;
  output: string;
  seconds: number;
}

/** Runs argv in its own process group (killed whole on timeout); stdout and stderr together. */
function run(argv: string[], cwd: string, env: Env, timeoutMs = 240_000): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(argv[0], argv.slice(1), { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const add = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.length > 400_000) output = output.slice(-200_000);
    };
    child.stdout.on('data', add);
    child.stderr.on('data', add);
    const timer = setTimeout(() => {
      output += `\n[killed after ${timeoutMs / 1000} s]`;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output, seconds: (Date.now() - started) / 1000 });
    });
  });
}

async function must(argv: string[], cwd = '/'): Promise<void> {
  const r = await run(argv, cwd, { PATH: SYSTEM_PATH });
  if (r.code !== 0) throw new Error(`${argv.join(' ')} exited ${r.code}: ${r.output.slice(-2000)}`);
}

/** A copy (hard links with `link`: for trees nothing later writes into in place). Directories merge into `to`. */
async function copy(from: string, to: string, link = false): Promise<void> {
  const flags = link ? '-al' : '-a';
  if (statSync(from).isDirectory()) {
    mkdirSync(to, { recursive: true });
    await must(['cp', flags, `${from}/.`, to]);
  } else {
    mkdirSync(dirname(to), { recursive: true });
    await must(['cp', flags, from, to]);
  }
}

/** The npm cache, as a stand-in home's own: content hard-linked (cacache never rewrites it), the index copied (it is appended to). */
async function seedNpmCache(home: string): Promise<void> {
  const cache = join(home, '.npm', '_cacache');
  mkdirSync(cache, { recursive: true });
  if (!existsSync(HOST_NPM_CACHE)) return; // npm downloads instead
  await copy(join(HOST_NPM_CACHE, 'content-v2'), join(cache, 'content-v2'), true);
  await copy(join(HOST_NPM_CACHE, 'index-v5'), join(cache, 'index-v5'));
}

/** A clean clone of this checkout's HEAD, with the working tree's uncommitted changes laid over it (what the next commit holds). */
async function cleanClone(dest: string): Promise<string> {
  const git = (args: string[], cwd = REPO_ROOT) => execFileSync('git', args, { cwd, encoding: 'utf8' });
  await must(['git', 'clone', '-q', '--no-checkout', REPO_ROOT, dest]);
  await must(['git', '-C', dest, 'checkout', '-q', git(['rev-parse', 'HEAD']).trim()]);
  const changed = [...git(['diff', '--name-only', 'HEAD']).split('\n'), ...git(['ls-files', '--others', '--exclude-standard']).split('\n')].filter(Boolean);
  for (const file of changed) {
    if (existsSync(join(REPO_ROOT, file))) cpSync(join(REPO_ROOT, file), join(dest, file), { recursive: true });
    else rmSync(join(dest, file), { force: true });
  }
  return dest;
}

// ---------------------------------------------------------------------------------------------
// Installs, shared where they are the same

/** One `&&`-separated part of a RUN line or a line of a `run:` step that installs npm dependencies. */
const INSTALL = /(^|\s)(npm\s+(ci|install|i|clean-install)\b|\S*ensure-deps\.sh\b)/;

function installSegments(script: string): string[] {
  return script
    .replace(/^\s*#.*$/gm, '')
    .split(/\n|&&|;/)
    .map((s) => s.trim())
    .filter((s) => INSTALL.test(s));
}

interface Reference {
  command: string;
  dir: string;
  ran: Ran;
}
const references = new Map<string, Promise<Reference>>();

/** The install `command` would do in `cwd` with `env`, done once per command and inputs (see the header). */
function referenceInstall(tmp: string, command: string, cwd: string, env: Env): Promise<Reference> {
  const inputs = ['package.json', 'package-lock.json', '.npmrc', ...command.split(/\s+/).filter((t) => !t.startsWith('-'))].filter(
    (f, i, all) => all.indexOf(f) === i && existsSync(join(cwd, f)) && statSync(join(cwd, f)).isFile(),
  );
  const key = createHash('sha256').update(command);
  for (const f of inputs) key.update(`\0${f}\0`).update(readFileSync(join(cwd, f)));
  // npm reads NODE_ENV=production only as the default of --omit=dev.
  const npmEnv = Object.entries(env).filter(([k]) => (/^npm_config_/i.test(k) && !/^npm_config_(cache|prefix)$/i.test(k)) || (k === 'NODE_ENV' && !/--omit[= ]dev\b|--production\b/.test(command)));
  for (const [k, v] of npmEnv.sort()) key.update(`\0${k}=${v}`);
  const id = key.digest('hex');
  let ref = references.get(id);
  if (!ref) {
    const dir = join(tmp, 'installs', String(references.size));
    ref = (async () => {
      for (const f of inputs) await copy(join(cwd, f), join(dir, 'work', f));
      await seedNpmCache(join(dir, 'home'));
      const ran = await run(['/bin/sh', '-c', command], join(dir, 'work'), { ...env, HOME: join(dir, 'home'), npm_config_cache: join(dir, 'home', '.npm') });
      return { command, dir: join(dir, 'work'), ran };
    })();
    references.set(id, ref);
  }
  return ref;
}

interface Step {
  /** file:line (Dockerfile) or file: step name (workflow) */
  where: string;
  command: string;
  ran?: Ran;
  /** Why it was not run. */
  skipped?: string;
  /** The requirement this machine lacks, when that is why it was skipped. */
  missing?: string;
  /** What it must do: exit 0, or (a drydock step) exit 3 naming the unreachable address. */
  expect: 'success' | 'unreachable';
}

/** Before running a line that installs: the shared install, then its node_modules in `cwd`. False (and the step failed) when the install fails. */
async function prepareInstall(tmp: string, script: string, cwd: string, env: Env, step: Step): Promise<boolean> {
  for (const command of installSegments(script)) {
    const ref = await referenceInstall(tmp, command, cwd, env);
    if (ref.ran.code !== 0) {
      step.ran = { ...ref.ran, output: `${command} (in a copy of ${cwd}):\n${ref.ran.output}` };
      return false;
    }
    if (!existsSync(join(cwd, 'node_modules')) && existsSync(join(ref.dir, 'node_modules'))) await copy(join(ref.dir, 'node_modules'), join(cwd, 'node_modules'), true);
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Dockerfiles

interface Instruction {
  op: string;
  args: string;
  line: number;
}

function dockerInstructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let buf = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    if (/^\s*#/.test(raw) || (!buf && !raw.trim())) return; // comments (also inside a continued line) and blank lines
    if (!buf) start = i + 1;
    if (/\\\s*$/.test(raw)) {
      buf += `${raw.replace(/\\\s*$/, '')} `;
      return;
    }
    buf += raw;
    const m = /^\s*(\w+)\s+([\s\S]*)$/.exec(buf);
    assert.ok(m, `line ${start}: not an instruction: ${buf}`);
    out.push({ op: m[1].toUpperCase(), args: m[2].trim(), line: start });
    buf = '';
  });
  return out;
}

/** The image's absolute paths, inside its stand-in directory. */
const IMAGE_PATH = /(?<=^|[\s=:"'])\/(?=(?:app|usr\/local|root|opt|etc|var|home)(?:[/\s"':]|$))/g;
const inImage = (root: string, text: string) => text.replace(IMAGE_PATH, `${root}/`);
const substitute = (text: string, vars: Env) => text.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string | undefined, b: string | undefined) => vars[(a ?? b)!] ?? '');

function envPairs(args: string): [string, string][] {
  if (!/^[A-Za-z_]\w*=/.test(args)) {
    const [k, ...rest] = args.split(/\s+/);
    return [[k, rest.join(' ')]];
  }
  return [...args.matchAll(/([A-Za-z_]\w*)=("(?:[^"\\]|\\.)*"|\S*)/g)].map((m) => [m[1], m[2].startsWith('"') ? (JSON.parse(m[2]) as string) : m[2]]);
}

/** A RUN line that only installs the base image's Debian packages. */
const isAptGet = (line: string) => line.split('&&').every((s) => /^\s*(apt-get\s|rm -rf \/var\/lib\/apt\/lists\/\*\s*$)/.test(s));

/** No RUN line may remove anything outside this test's directories. */
function assertContained(tmp: string, text: string): void {
  for (const m of text.matchAll(/\brm\s+((?:-\w+\s+)*)([^&|;\n]+)/g)) {
    for (const target of m[2].trim().split(/\s+/)) {
      if (target.startsWith('/') && !target.startsWith(`${tmp}/`)) throw new Error(`refusing to run 'rm ${m[1]}${m[2].trim()}' here: ${target} is outside the image's directory`);
    }
  }
}

interface Image {
  file: string;
  from: string[];
  steps: Step[];
  /** The final stage: its directory, workdir, runtime env and CMD. */
  root: string;
  workdir: string;
  env: Env;
  user?: string;
  cmd?: string[];
  /** Why the build stopped early, when it did. */
  stopped?: string;
  /** Checks of the built image: the CMD started, the `drydock` CLI, what its program needs first. */
  checks: { what: string; ran: Ran; expect: (r: Ran) => void }[];
}

/** Where tfjs-native builds live in a DRYDOCK_CACHE_DIR (scripts/install-tfjs-native.sh), per mode. */
function tfjsBuild(cache: string, gpu: boolean): string | undefined {
  const dir = join(cache, 'tfjs-native');
  if (!existsSync(dir)) return undefined;
  const prefix = gpu ? 'tfjs-node-gpu-' : 'tfjs-node-';
  return readdirSync(dir).find((d) => d.startsWith(prefix) && (gpu || !d.startsWith('tfjs-node-gpu-')) && existsSync(join(dir, d, 'build-id')));
}

async function buildImage(tmp: string, context: string, file: string): Promise<Image> {
  const name = basename(file, '.Dockerfile');
  const dir = join(tmp, 'images', name);
  const root = join(dir, 'root');
  const image: Image = { file, from: [], steps: [], root, workdir: '/', env: {}, checks: [] };
  const stages = new Map<string, string>();
  const globalArgs: Env = {};
  let stage = -1;
  let args: Env = {};
  for (const ins of dockerInstructions(readFileSync(join(context, file), 'utf8'))) {
    const where = `${file}:${ins.line}`;
    if (ins.op === 'ARG') {
      const [, k, v] = /^(\w+)(?:=(.*))?$/.exec(ins.args)!;
      if (stage < 0) globalArgs[k] = v ?? '';
      else args[k] = v !== undefined ? substitute(v, { ...args, ...image.env }) : (globalArgs[k] ?? '');
      continue;
    }
    if (ins.op === 'FROM') {
      const [base, as, alias] = ins.args.split(/\s+/);
      if (stage >= 0) renameSync(root, join(dir, `stage-${stage}`));
      stage++;
      stages.set(String(stage), join(dir, `stage-${stage}`));
      if (as?.toUpperCase() === 'AS') stages.set(alias, join(dir, `stage-${stage}`));
      image.from.push(substitute(base, globalArgs));
      for (const d of ['usr/local/bin', 'root', 'home/node', 'tmp']) mkdirSync(join(root, d), { recursive: true });
      await seedNpmCache(join(root, 'root'));
      image.env = {};
      image.workdir = '/';
      image.user = undefined;
      args = {};
      continue;
    }
    assert.ok(stage >= 0, `${where}: ${ins.op} before FROM`);
    const vars = { ...args, ...image.env };
    switch (ins.op) {
      case 'WORKDIR':
        image.workdir = posix.resolve(image.workdir, substitute(ins.args, vars));
        mkdirSync(join(root, image.workdir), { recursive: true });
        break;
      case 'ENV':
        for (const [k, v] of envPairs(ins.args)) image.env[k] = substitute(v, { ...args, ...image.env });
        break;
      case 'COPY': {
        const tokens = substitute(ins.args, vars).split(/\s+/);
        const from = tokens.find((t) => t.startsWith('--from='))?.slice('--from='.length);
        const [dest, ...srcs] = tokens.filter((t) => !t.startsWith('--')).reverse();
        srcs.reverse();
        const srcRoot = from === undefined ? context : stages.get(from);
        assert.ok(srcRoot, `${where}: COPY --from=${from}: no such stage`);
        const destAbs = join(root, posix.resolve(image.workdir, dest));
        for (const src of srcs) {
          assert.ok(!/[*?[]/.test(src), `${where}: COPY with a wildcard is not emulated here`);
          const abs = join(srcRoot, from === undefined ? src : posix.resolve('/', src));
          if (!existsSync(abs)) throw new Error(`${where}: COPY ${src}: not in the ${from === undefined ? 'build context (a clean clone)' : `stage ${from}`}`);
          const many = srcs.length > 1 || dest.endsWith('/');
          const to = statSync(abs).isDirectory() || !many ? destAbs : join(destAbs, basename(src));
          // From a stage: node_modules and caches, linked; from the context: copied (RUN lines may rewrite them, e.g. npm the lock).
          await copy(abs, to, from !== undefined);
        }
        break;
      }
      case 'RUN': {
        const step: Step = { where, command: ins.args, expect: 'success' };
        image.steps.push(step);
        if (isAptGet(ins.args)) {
          step.skipped = "the base image's Debian packages (apt-get needs root and a Debian mirror); see the header";
          break;
        }
        const text = inImage(root, ins.args);
        assertContained(tmp, text);
        const env: Env = {
          PATH: `${root}/usr/local/bin:${SYSTEM_PATH}`,
          HOME: join(root, 'root'),
          npm_config_cache: join(root, 'root', '.npm'),
          ...PROXY_ENV,
          ...NPM_ENV,
          ...Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, inImage(root, v)])),
        };
        const cwd = join(root, image.workdir);
        if (/install-tfjs-native\.sh/.test(text)) {
          // Its build cache (see the header): copied in where the image's DRYDOCK_CACHE_DIR points.
          const gpu = /--gpu\b/.test(substitute(text, env));
          const build = tfjsBuild(HOST_DRYDOCK_CACHE, gpu);
          if (!build) {
            step.skipped = step.missing = `no native TensorFlow build (${gpu ? 'gpu' : 'cpu'}) in ${HOST_DRYDOCK_CACHE}/tfjs-native (bash scripts/install-tfjs-native.sh${gpu ? ' --gpu' : ''} makes it; npm test runs it)`;
            image.stopped = step.skipped;
            return image;
          }
          assert.ok(env.DRYDOCK_CACHE_DIR?.startsWith(`${root}/`), `${where}: install-tfjs-native.sh runs without the image's DRYDOCK_CACHE_DIR`);
          const into = join(env.DRYDOCK_CACHE_DIR, 'tfjs-native', build);
          await copy(join(HOST_DRYDOCK_CACHE, 'tfjs-native', build), into, true);
          rmSync(join(into, '.lock'), { force: true }); // the installer opens it for writing: this copy's own
        }
        if (!(await prepareInstall(tmp, ins.args, cwd, env, step))) {
          image.stopped = `${where} failed`;
          return image;
        }
        step.ran = await run(['/bin/sh', '-c', text], cwd, env);
        if (step.ran.code !== 0) {
          image.stopped = `${where} failed`;
          return image;
        }
        break;
      }
      case 'CMD':
        image.cmd = JSON.parse(ins.args) as string[];
        break;
      case 'USER':
        image.user = ins.args;
        break;
      case 'EXPOSE':
      case 'STOPSIGNAL':
      case 'LABEL':
        break;
      default:
        throw new Error(`${where}: ${ins.op} is not emulated by this test; teach it (test/structure/artifacts.test.ts)`);
    }
  }
  await checkImage(image);
  return image;
}

/** What each image's program needs first, beyond starting: checked in the built image (keyed by the script its CMD runs). */
const PROGRAM_NEEDS: Record<string, { what: string; script: string; expect: RegExp }> = {
  'gpu-agent/main.ts': {
    what: "node-llama-cpp loads a prebuilt llama.cpp binary (the agent never compiles one: build: 'never')",
    script: `const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
      const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
      console.log('llama.cpp', llama.llamaCppRelease?.release ?? 'loaded'); await llama.dispose();`,
    expect: /^llama\.cpp \S+/m,
  },
  'workers/trainer.ts': {
    what: "tfjs-node(-gpu) loads native TensorFlow from the image's DRYDOCK_CACHE_DIR (the trainer's backend)",
    script: `const { existsSync } = await import('node:fs'); const { createRequire } = await import('node:module');
      const pkg = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'].find((p) => existsSync('node_modules/' + p + '/.drydock-native'));
      if (!pkg) throw new Error('no tfjs-node package built by install-tfjs-native.sh in node_modules');
      const tf = createRequire(process.cwd() + '/')(pkg); await tf.ready();
      console.log(pkg, tf.getBackend(), tf.backend().binding.TF_Version);`,
    expect: /^@tensorflow\/tfjs-node(-gpu)? tensorflow 2\.\d+/m,
  },
};

async function checkImage(image: Image): Promise<void> {
  const { root } = image;
  const cwd = join(root, image.workdir);
  // `docker run` with no -e: the image's ENV only, as its USER.
  const env: Env = {
    PATH: `${root}/usr/local/bin:${SYSTEM_PATH}`,
    HOME: join(root, image.user && image.user !== 'root' ? `home/${image.user}` : 'root'),
    ...Object.fromEntries(Object.entries(image.env).map(([k, v]) => [k, inImage(root, v)])),
  };
  const checks: Promise<Image['checks'][number]>[] = [];
  if (image.cmd) {
    const cmd = image.cmd;
    checks.push(
      run(cmd, cwd, env, 60_000).then((ran) => ({
        what: `CMD ${JSON.stringify(cmd)} with only the image's ENV`,
        ran,
        // Every program here validates its settings only after its static imports loaded: stopping
        // there, naming what to set, shows the whole module graph resolves in the image.
        expect: (r) => {
          assert.equal(r.code, 2, `expected exit 2 (a required setting missing), got ${r.code}`);
          assert.match(r.output, /^(control worker|trainer worker|gpu-agent): (DRYDOCK|TEMPORAL)_\w+/m);
        },
      })),
    );
    const need = PROGRAM_NEEDS[cmd.at(-1)!];
    if (need) {
      // A file beside the program (not `node -e`: node-llama-cpp forks itself with this process's execArgv to test a binary).
      const script = join(cwd, '.artifacts-test-check.mjs');
      writeFileSync(script, need.script);
      checks.push(
        run([cmd[0], script], cwd, env, 60_000).then((ran) => ({
          what: need.what,
          ran,
          expect: (r) => {
            assert.equal(r.code, 0);
            assert.match(r.output, need.expect);
          },
        })),
      );
    }
  }
  if (existsSync(join(root, 'usr/local/bin/drydock'))) {
    checks.push(
      run(['drydock', '--help'], cwd, env, 60_000).then((ran) => ({
        what: 'the drydock CLI the image puts on PATH',
        ran,
        expect: (r) => {
          assert.equal(r.code, 0);
          assert.match(r.output, /Exit codes: 0 success/);
        },
      })),
    );
  }
  image.checks = await Promise.all(checks);
}

// ---------------------------------------------------------------------------------------------
// GitHub Actions workflows

interface JobRun {
  file: string;
  job: string;
  workspace: string;
  globalBin: string;
  nodeVersion?: string;
  steps: Step[];
  uploads: { where: string; path: string }[];
}

/** `${{ }}`: context paths, 'strings' and `||`, which is all these workflows use; anything else fails here. */
function expressions(text: string, ctx: object, where: string): string {
  return text.replace(/\$\{\{\s*(.*?)\s*\}\}/g, (_, expr: string) => {
    for (const operand of expr.split('||').map((s) => s.trim())) {
      let value: unknown;
      if (/^'.*'$/.test(operand)) value = operand.slice(1, -1).replace(/''/g, "'");
      else if (/^[\w.-]+$/.test(operand)) {
        value = operand.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], ctx);
        if (value === undefined) throw new Error(`${where}: \${{ ${expr} }}: the test has no value for ${operand}; add one to TEST_CONTEXT`);
      } else throw new Error(`${where}: \${{ ${expr} }} is not an expression this test evaluates`);
      if (value) return String(value);
    }
    return '';
  });
}

/** GitHub's shells: unspecified is `bash -e {0}`, `bash` is `bash --noprofile --norc -eo pipefail {0}`. */
function shellArgv(shell: string | undefined, script: string): string[] {
  if (shell === undefined) return ['bash', '-e', script];
  if (shell === 'bash') return ['bash', '--noprofile', '--norc', '-eo', 'pipefail', script];
  if (shell === 'sh') return ['sh', '-e', script];
  if (shell.includes('{0}')) return shell.split(/\s+/).map((t) => (t === '{0}' ? script : t));
  throw new Error(`shell '${shell}' is not emulated by this test`);
}

const RUNS_DRYDOCK = /(^|[\s;&|(])drydock\s/m;

async function runWorkflow(tmp: string, context: string, file: string): Promise<JobRun[]> {
  type WfStep = { name?: string; uses?: string; run?: string; shell?: string; env?: Env; with?: Record<string, unknown>; if?: string };
  type Job = { env?: Env; defaults?: { run?: { shell?: string } }; steps: WfStep[] };
  const doc = parseYaml(readFileSync(join(context, file), 'utf8')) as {
    on?: { workflow_dispatch?: { inputs?: Record<string, { default?: string }> } };
    defaults?: { run?: { shell?: string } };
    jobs: Record<string, Job>;
  };
  const inputs = Object.fromEntries(
    Object.entries(doc.on?.workflow_dispatch?.inputs ?? {}).map(([k, v]) => {
      const value = v.default ?? TEST_INPUTS[k];
      assert.ok(value !== undefined, `${file}: input ${k} has no default and the test no value for it (TEST_INPUTS)`);
      return [k, value];
    }),
  );
  const ctx = { ...TEST_CONTEXT, github: { ...TEST_CONTEXT.github, event: { inputs } } };
  return Promise.all(
    Object.entries(doc.jobs).map(async ([jobName, job]) => {
      const dir = join(tmp, 'workflows', basename(file).replace(/\.ya?ml$/, ''), jobName);
      const workspace = await cleanClone(join(dir, 'workspace'));
      const home = join(dir, 'home');
      const global = join(dir, 'toolcache'); // setup-node's Node: `npm link` puts bins under its prefix
      mkdirSync(join(dir, 'temp'), { recursive: true });
      mkdirSync(home, { recursive: true });
      const result: JobRun = { file, job: jobName, workspace, globalBin: join(global, 'bin'), steps: [], uploads: [] };
      const env: Env = {
        PATH: `${global}/bin:${SYSTEM_PATH}`,
        HOME: home,
        CI: 'true',
        GITHUB_ACTIONS: 'true',
        GITHUB_WORKSPACE: workspace,
        RUNNER_TEMP: join(dir, 'temp'),
        npm_config_prefix: global,
        npm_config_cache: join(home, '.npm'),
        ...PROXY_ENV,
        ...NPM_ENV,
      };
      for (const [k, v] of Object.entries(job.env ?? {})) env[k] = expressions(String(v), ctx, `${file}: jobs.${jobName}.env.${k}`);
      const defaultShell = job.defaults?.run?.shell ?? doc.defaults?.run?.shell;
      // drydock steps cannot change anything another step reads (nothing answers at the address): run together.
      const pending: Promise<void>[] = [];
      for (const [i, s] of job.steps.entries()) {
        const where = `${file}: jobs.${jobName}.steps[${i}]${s.name ? ` (${s.name})` : ''}`;
        if (s.uses) {
          const action = s.uses.split('@')[0];
          if (action === 'actions/checkout') continue; // the workspace is the clean clone
          if (action === 'actions/setup-node') {
            result.nodeVersion = String(s.with?.['node-version']);
            if (s.with?.cache === 'npm') await seedNpmCache(home);
            continue;
          }
          if (action === 'actions/upload-artifact') {
            await Promise.all(pending);
            result.uploads.push({ where, path: expressions(String(s.with?.path), ctx, where) });
            continue;
          }
          throw new Error(`${where}: uses ${s.uses}, which this test does not emulate`);
        }
        assert.ok(s.run, `${where}: neither uses nor run`);
        const script = expressions(s.run, ctx, where);
        const stepEnv = { ...env, ...Object.fromEntries(Object.entries(s.env ?? {}).map(([k, v]) => [k, expressions(String(v), ctx, where)])) };
        const step: Step = { where, command: s.run.trim(), expect: RUNS_DRYDOCK.test(script) ? 'unreachable' : 'success' };
        result.steps.push(step);
        const scriptFile = join(dir, 'temp', `step-${i}.sh`);
        writeFileSync(scriptFile, script);
        const go = async () => {
          if (await prepareInstall(tmp, script, workspace, stepEnv, step)) step.ran = await run(shellArgv(s.shell ?? defaultShell, scriptFile), workspace, stepEnv);
        };
        if (step.expect === 'unreachable') pending.push(go());
        else {
          await Promise.all(pending);
          await go();
          if (step.ran?.code !== 0) break; // GitHub skips the rest of the job
        }
      }
      await Promise.all(pending);
      return result;
    }),
  );
}

// ---------------------------------------------------------------------------------------------

/** A step and its output: the start (npm says why it refuses there, before its usage text) and the end. */
function show(step: Step): string {
  const out = step.ran?.output ?? '';
  const text = out.length <= 5000 ? out : `${out.slice(0, 2000)}\n[…]\n${out.slice(-3000)}`;
  return `${step.where}: ${step.command}\n  exit ${step.ran?.code} after ${step.ran?.seconds.toFixed(1)} s; output:\n${text}`;
}

describe('the artifacts users deploy with install and run from a clean clone', { skip: skipUnlessCi(MISSING_TOOL), timeout: 600_000 }, () => {
  let tmp: string;
  let images: Map<string, Image>;
  let jobs: Map<string, JobRun[]>;
  let setupError: unknown;

  before(async () => {
    requirePresent(MISSING_TOOL);
    tmp = realpathSync(mkdtempSync(join(tmpdir(), 'drydock-artifacts-')));
    try {
      const context = await cleanClone(join(tmp, 'context'));
      const [built, ran] = await Promise.all([
        Promise.all(DOCKERFILES.map((f) => buildImage(tmp, context, f))),
        Promise.all(WORKFLOWS.map((f) => runWorkflow(tmp, context, f))),
      ]);
      images = new Map(built.map((i) => [i.file, i]));
      jobs = new Map(ran.map((r, i) => [WORKFLOWS[i], r]));
    } catch (err) {
      setupError = err;
    }
  });
  after(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('finds the Dockerfiles and workflows, and each installs with the project\'s own command, the same one', async (t) => {
    for (const ref of await Promise.all(references.values())) t.diagnostic(`install '${ref.command}' (once, shared): exit ${ref.ran.code}, ${ref.ran.seconds.toFixed(1)} s`);
    assert.ok(DOCKERFILES.length >= 3 && WORKFLOWS.length >= 2, `found ${DOCKERFILES.join(', ')}; ${WORKFLOWS.join(', ')}`);
    // The project's own install: what `npm test` runs (scripts/test.sh), flags aside.
    const own = installSegments(readFileSync(join(REPO_ROOT, 'scripts/test.sh'), 'utf8'));
    assert.deepEqual(own, ['bash scripts/ensure-deps.sh']);
    const commands = new Map<string, string[]>();
    for (const f of DOCKERFILES) {
      const runs = dockerInstructions(readFileSync(join(REPO_ROOT, f), 'utf8')).filter((i) => i.op === 'RUN');
      commands.set(f, runs.flatMap((r) => installSegments(r.args)));
    }
    for (const f of WORKFLOWS) {
      const doc = parseYaml(readFileSync(join(REPO_ROOT, f), 'utf8')) as { jobs: Record<string, { steps: { run?: string }[] }> };
      commands.set(f, Object.values(doc.jobs).flatMap((j) => j.steps.flatMap((s) => (s.run ? installSegments(s.run) : []))));
    }
    for (const [f, cmds] of commands) {
      assert.equal(cmds.length, 1, `${f} should install npm dependencies exactly once; it runs: ${cmds.join(' | ') || 'nothing'}`);
      assert.ok(cmds[0].startsWith(`${own[0]} `) || cmds[0] === own[0], `${f} installs with '${cmds[0]}', not as the project's scripts do ('${own[0]} …'): npm ci refuses the committed lock on a clean clone`);
    }
    // One command for all: the test installs it once (see the header). A deliberate difference
    // between artifacts is allowed, but each different command costs this test a full install.
    const distinct = new Set([...commands.values()].map((c) => c[0]));
    assert.equal(distinct.size, 1, `the artifacts install with different commands: ${[...commands].map(([f, c]) => `${f}: ${c[0]}`).join('; ')}`);
  });

  for (const file of DOCKERFILES) {
    it(`${file}: its RUN lines build as written, and the image's CMD, CLI and program start`, (t) => {
      if (setupError) throw setupError;
      const image = images.get(file)!;
      for (const base of image.from) {
        const m = /^node:(\d+)/.exec(base);
        if (m) assert.equal(m[1], process.versions.node.split('.')[0], `${file} builds on ${base}; this test runs Node ${process.versions.node}`);
      }
      for (const step of image.steps) {
        if (step.skipped) {
          t.diagnostic(`${step.where}: not run: ${step.skipped}`);
          continue;
        }
        assert.equal(step.ran?.code, 0, show(step));
        t.diagnostic(`${step.where}: ${step.ran!.seconds.toFixed(1)} s`);
      }
      const missing = image.steps.find((s) => s.missing)?.missing;
      if (missing) {
        if (ON_CI) requirePresent(missing);
        return t.skip(`the build stops here: ${missing}`);
      }
      assert.equal(image.stopped, undefined);
      assert.ok(image.cmd, `${file} has no CMD`);
      for (const check of image.checks) {
        try {
          check.expect(check.ran);
        } catch (err) {
          throw new Error(`${file}: ${check.what}: ${(err as Error).message}\noutput (end):\n${check.ran.output.slice(-3000)}`);
        }
        t.diagnostic(`${check.what}: ok, ${check.ran.seconds.toFixed(1)} s`);
      }
      assert.ok(image.checks.length >= 1);
    });
  }

  for (const file of WORKFLOWS) {
    it(`${file}: its run: steps install, put the drydock CLI on PATH and reach for the Temporal address the job names`, (t) => {
      if (setupError) throw setupError;
      for (const job of jobs.get(file)!) {
        assert.equal(job.nodeVersion, process.versions.node.split('.')[0], `${file}: setup-node installs Node ${job.nodeVersion}; this test runs Node ${process.versions.node}`);
        assert.ok(job.steps.some((s) => s.expect === 'unreachable'), `${file}: no step runs drydock`);
        for (const step of job.steps) {
          assert.ok(step.ran, `${step.where}: not run (an earlier step failed)`);
          if (step.expect === 'success') assert.equal(step.ran.code, 0, show(step));
          else {
            assert.equal(step.ran.code, 3, `expected exit 3 (cannot reach Temporal): ${show(step)}`);
            assert.match(step.ran.output, new RegExp(`cannot reach Temporal at ${TEMPORAL_UNREACHABLE.replace(/\./g, '\\.')}`), show(step));
          }
          t.diagnostic(`${step.where}: exit ${step.ran.code}, ${step.ran.seconds.toFixed(1)} s`);
        }
        // The drydock that ran is this checkout's, linked by `npm link`.
        const bin = join(job.globalBin, 'drydock');
        assert.ok(existsSync(bin), `${file}: no drydock in ${job.globalBin} after the steps`);
        assert.equal(realpathSync(bin), join(realpathSync(job.workspace), 'scripts/cli/drydock.mjs'));
        for (const upload of job.uploads) {
          const path = join(job.workspace, upload.path);
          assert.ok(existsSync(path), `${upload.where}: uploads ${upload.path}, which the steps did not write`);
          if (path.endsWith('.json')) assert.match(JSON.parse(readFileSync(path, 'utf8')).message, /cannot reach Temporal/, `${upload.where}: ${upload.path}`);
        }
      }
    });
  }
});
