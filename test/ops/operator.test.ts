import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { REPO_ROOT } from '../../scripts/lib/paths.ts';
import { codecFromEnv, ENCODING_ENCRYPTED } from '../../workers/codec.ts';
import { createCodecServer } from '../../workers/codecServer.ts';
import { SETUP_SEARCH_ATTRIBUTES } from '../../scripts/cli/setup.ts';
import { spawnWorker, type WorkerProcess } from '../../scripts/lib/workers.ts';
import { startFleet, type TestFleet } from '../../scripts/lib/fleet.ts';
import { waitFor } from '../../scripts/lib/waitFor.ts';
import { freePort } from '../helpers/moto.ts';
import { cliUserEnv, runCli, type CliRun } from '../helpers/cli.ts';
import { quietTemporalBin, temporalBin } from '../../scripts/lib/temporal.ts';
import { requirePresent, skipUnlessCi } from '../helpers/required.ts';

/**
 * The operator's journey on one real stack: a dev server with its Web UI (pointed at drydock's
 * codec server), a local fleet of real agents, and the real control worker with payload
 * encryption and metrics on, driven by the real `drydock` bin.
 */
const TQ = 'ops-e2e';
const SECRET_REASON = `ticket-${randomBytes(6).toString('hex')}-customer-visible-only-to-operators`;
const CHROMIUM = '/usr/bin/chromium';
const NO_CHROMIUM = !existsSync(CHROMIUM) && `${CHROMIUM} is missing: run 'bash scripts/install-chromium.sh'`;
const NO_SCRIPT = !existsSync('/usr/bin/script') && 'needs script(1) from util-linux for a pseudo-terminal';


describe('operator experience end to end: drydock CLI, encrypted payloads, worker metrics, Web UI', () => {
  let env: TestWorkflowEnvironment;
  let fleet: TestFleet;
  let worker: WorkerProcess;
  let codecServer: Server;
  let metricsUrl: string;
  let uiUrl: string;
  const codecKey = `ops:${randomBytes(32).toString('base64')}`;

  /** Counters of the pool's replacements on the worker's metrics endpoint (0 before the first). */
  const replaceCounters = async () => ({
    started: (await metric('drydock_replacements_started_total', 'pool="ops"')) ?? 0,
    succeeded: (await metric('drydock_replacements_succeeded_total', 'pool="ops"')) ?? 0,
    timed: (await metric('drydock_time_to_replace_seconds_count', 'pool="ops"')) ?? 0,
    uncordoned: (await metric('drydock_replacements_failed_total', 'reason="uncordoned"')) ?? 0,
  });
  type Counters = Awaited<ReturnType<typeof replaceCounters>>;

  // Each test that needs a replacement asks for it here: the first to ask runs it, later ones reuse
  // it, so every test holds on its own (e.g. alone under --test-name-pattern) without repeating it.
  interface Replaced {
    run: CliRun;
    workflowId: string;
    runId: string;
    node: string;
    replacement: string;
    phases: string[];
    before: Counters;
    after: Counters;
  }
  let replacedP: Promise<Replaced> | undefined;
  const replaceOnce = () =>
    (replacedP ??= (async () => {
      const node = fleet.nodeIds[0];
      const before = await replaceCounters();
      const run = await cli(['--json', 'pool', 'replace', 'ops', node, '--reason', SECRET_REASON, '--drain-timeout', '30', '--wait']);
      assert.equal(run.code, 0, `${run.stderr}\nworker: ${worker.output().slice(-3000)}`);
      const out = run.json() as { workflowId: string; runId: string; status: string; result: { replacementNodeId: string; phases: { phase: string }[] } };
      assert.equal(out.status, 'COMPLETED');
      return { run, workflowId: out.workflowId, runId: out.runId, node, replacement: out.result.replacementNodeId, phases: out.result.phases.map((p) => p.phase), before, after: await replaceCounters() };
    })());
  let failedP: Promise<{ run: CliRun; node: string; before: Counters; after: Counters }> | undefined;
  const failOnce = () =>
    (failedP ??= (async () => {
      const node = fleet.nodeIds[1];
      const before = await replaceCounters();
      const agentUrl = (await fleet.provider.describe(node))!.agentUrl!;
      await fetch(`${agentUrl}/jobs`, { method: 'POST', headers: { authorization: `Bearer ${fleet.token}` }, body: '{"seconds": 120}' });
      const run = await cli(['--json', 'pool', 'replace', 'ops', node, '--drain-timeout', '1', '--wait']);
      return { run, node, before, after: await replaceCounters() };
    })());

  const cli = (args: string[], extraEnv: Record<string, string> = {}) =>
    runCli(args, { TEMPORAL_ADDRESS: env.address, TEMPORAL_NAMESPACE: 'default', DRYDOCK_TASK_QUEUE: TQ, DRYDOCK_CODEC_KEY: codecKey, ...extraEnv }, 120_000);

  async function metric(name: string, labels: string): Promise<number | undefined> {
    const text = await (await fetch(metricsUrl)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
    return line === undefined ? undefined : Number(line.split(' ').pop());
  }

  before(async () => {
    const [codecPort, uiPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
    uiUrl = `http://127.0.0.1:${uiPort}`;
    codecServer = createCodecServer(codecFromEnv({ DRYDOCK_CODEC_KEY: codecKey })!, { corsOrigins: [uiUrl, `http://localhost:${uiPort}`] });
    await new Promise<void>((r) => codecServer.listen(codecPort, '127.0.0.1', r));
    [env, fleet] = await Promise.all([
      TestWorkflowEnvironment.createLocal({
        server: {
          executable: { type: 'existing-path', path: quietTemporalBin().path },
          searchAttributes: SETUP_SEARCH_ATTRIBUTES,
          ui: true,
          uiPort,
          extraArgs: ['--ui-codec-endpoint', `http://127.0.0.1:${codecPort}`],
        },
      }),
      startFleet({ pool: 'ops', nodes: 2, simJobs: 1, simJobSeconds: 1, bootSeconds: 1 }),
    ]);
    // spawnWorker passes this process's env on: the worker encrypts with the same key and serves metrics.
    process.env.DRYDOCK_CODEC_KEY = codecKey;
    process.env.DRYDOCK_METRICS_ADDRESS = `127.0.0.1:${metricsPort}`;
    metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
    worker = await spawnWorker(fleet, env.address, TQ);
  });

  after(async () => {
    await worker?.kill('SIGTERM');
    await fleet?.cleanup();
    await env?.teardown();
    await new Promise((r) => (codecServer ? codecServer.close(r) : r(undefined)));
  });

  it('bad input exits 2 naming the field, before touching Temporal', async () => {
    const r = await cli(['--json', 'pool', 'replace', 'ops', 'node 1!']);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.json().exitCode, 2);
    assert.match(String(r.json().message), /^nodeId: 'node 1!' is not valid/);
    const timeout = await cli(['pool', 'replace', 'ops', fleet.nodeIds[0], '--drain-timeout', '100000']);
    assert.equal(timeout.code, 2);
    assert.match(timeout.stderr, /drainTimeoutSeconds: must be between 0 and 86400/);
    const usage = await cli(['pool', 'replace', 'ops']);
    assert.equal(usage.code, 2, 'a missing argument is bad input too');
    assert.match(usage.stderr, /missing required argument 'node'/);
  });

  it('an unreachable Temporal exits 3 with what to check', async () => {
    const r = await cli(['--json', 'pool', 'status', 'ops'], { TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}` });
    assert.equal(r.code, 3, r.stderr);
    assert.match(String(r.json().message), /cannot reach Temporal at 127\.0\.0\.1:\d+.*TEMPORAL_ADDRESS/);
  });

  it('setup registers the search attributes in a fresh namespace, and is idempotent', async () => {
    await promisify(execFile)(temporalBin(), ['operator', 'namespace', 'create', '--address', env.address, '--namespace', 'ops-setup']);
    // A new namespace reaches the frontend's cache within seconds; until then setup says 'not found' (exit 2).
    let first: CliRun;
    const until = Date.now() + 30_000;
    do first = await cli(['--json', '--namespace', 'ops-setup', 'setup']);
    while (first.code === 2 && Date.now() < until);
    assert.equal(first.code, 0, first.stderr);
    const names = SETUP_SEARCH_ATTRIBUTES.map((k) => k.name);
    assert.ok(names.includes('DrydockPool'));
    assert.deepEqual(first.json().added, names);
    const attrs = await env.connection.operatorService.listSearchAttributes({ namespace: 'ops-setup' });
    for (const name of names) assert.ok(attrs.customAttributes?.[name], `${name} registered`);
    const second = await cli(['--json', '--namespace', 'ops-setup', 'setup']);
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(second.json(), { namespace: 'ops-setup', added: [], present: names });
  });

  it('pool replace --wait replaces the node, prints progress lines off a TTY and the result as JSON, and exits 0', async () => {
    const { run: r, node, workflowId, replacement, phases } = await replaceOnce();
    assert.equal(workflowId, `replace/ops/${node}`);
    assert.deepEqual(phases, ['validating', 'cordoning', 'draining', 'terminating', 'provisioning', 'waiting-healthy']);
    assert.equal((await fleet.provider.describe(node))?.state, 'terminated');
    assert.equal((await fleet.provider.describe(replacement))?.state, 'running');
    const lines = r.stderr.trim().split('\n');
    assert.ok(lines.length >= 2 && lines.every((l) => /^\S+Z replace\/ops\/\S+: .+ \([0-6]\/6 phases\)$/.test(l)), `plain progress lines on stderr:\n${r.stderr}`);
    assert.match(lines[lines.length - 1], /: done .*\(6\/6 phases\)$/);
  });

  it('the raw history holds no plaintext of the input; the codec server decodes it for the UI', async () => {
    const replaced = await replaceOnce();
    const history = await env.connection.workflowService.getWorkflowExecutionHistory({
      namespace: 'default',
      execution: { workflowId: replaced.workflowId, runId: replaced.runId },
    });
    const texts: string[] = [];
    const walk = (v: unknown): void => {
      if (v instanceof Uint8Array) texts.push(Buffer.from(v).toString('latin1'));
      else if (typeof v === 'string') texts.push(v);
      else if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object') Object.values(v).forEach(walk);
    };
    walk(history);
    const raw = texts.join('\n');
    // The walk sees payload bytes: search attributes are plaintext by design, and are found.
    assert.ok(raw.includes(replaced.node!), 'the search attribute DrydockNode is visible');
    assert.ok(!raw.includes(SECRET_REASON), 'the reason given as input must not be stored in clear');
    // Every payload is encrypted, except search attributes, which the server must index, and the
    // SDK core's own patch markers (`patched()`), which hold only the patch id, never user data.
    const clear: string[] = [];
    const findPayloads = (v: unknown, path: string): void => {
      if (!v || typeof v !== 'object' || v instanceof Uint8Array) return;
      const enc = (v as Payload).metadata?.encoding;
      if (enc instanceof Uint8Array && Buffer.from(enc).toString() !== ENCODING_ENCRYPTED) clear.push(path);
      for (const [k, child] of Object.entries(v)) if (k !== 'searchAttributes' && k !== 'patch-data') findPayloads(child, `${path}.${k}`);
    };
    findPayloads(history, 'history');
    assert.deepEqual(clear, []);
    const started = history.history!.events!.find((e) => e.workflowExecutionStartedEventAttributes)!;
    const payload = started.workflowExecutionStartedEventAttributes!.input!.payloads![0] as Payload;
    assert.equal(Buffer.from(payload.metadata!.encoding!).toString(), ENCODING_ENCRYPTED);

    const port = (codecServer.address() as { port: number }).port;
    const res = await fetch(`http://127.0.0.1:${port}/decode`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-namespace': 'default' },
      body: JSON.stringify({
        payloads: [
          {
            metadata: Object.fromEntries(Object.entries(payload.metadata!).map(([k, v]) => [k, Buffer.from(v!).toString('base64')])),
            data: Buffer.from(payload.data!).toString('base64'),
          },
        ],
      }),
    });
    const body = (await res.json()) as { payloads: { metadata: Record<string, string>; data: string }[] };
    const decoded = { metadata: { encoding: Buffer.from(body.payloads[0].metadata.encoding, 'base64') }, data: Buffer.from(body.payloads[0].data, 'base64') };
    assert.equal((defaultPayloadConverter.fromPayload(decoded) as { reason: string }).reason, SECRET_REASON);
  });

  it('the worker serves drydock counters, time-to-replace and the SDK metrics on one endpoint', async () => {
    const { before, after } = await replaceOnce();
    assert.equal(after.started - before.started, 1, 'drydock_replacements_started_total counted the replacement');
    assert.equal(after.succeeded - before.succeeded, 1, 'drydock_replacements_succeeded_total');
    assert.equal(after.timed - before.timed, 1, 'drydock_time_to_replace_seconds_count');
    const sum = await metric('drydock_time_to_replace_seconds_sum', 'pool="ops"');
    assert.ok(sum !== undefined && sum > 0 && sum < 300, `time to replace ${sum}s`);
    const text = await (await fetch(metricsUrl)).text();
    assert.match(text, /^temporal_activity_execution_latency/m, "the SDK's own metrics");
    assert.match(text, /^drydock_worker_process_resident_memory_bytes/m);
  });

  it('a failed replacement exits 1 with the failure type, and the node stays in service', async () => {
    const { run: r, node, before, after } = await failOnce();
    assert.equal(r.code, 1, r.stderr);
    const out = r.json() as { status: string; workflowId: string; error: { type: string; message: string } };
    assert.equal(out.status, 'FAILED');
    assert.equal(out.workflowId, `replace/ops/${node}`);
    assert.equal(out.error.type, 'DrainTimeout');
    assert.match(out.error.message, /force: true/);
    assert.equal((await fleet.provider.describe(node))?.state, 'running');
    assert.equal(after.uncordoned - before.uncordoned, 1, 'drydock_replacements_failed_total{reason="uncordoned"}');
    assert.equal(after.started - before.started, 1, 'drydock_replacements_started_total counts the failed one too');
  });

  it('a backup through the CLI runs with encryption on, and the worker counts its bytes and its restore test', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drydock-ops-backup-'));
    try {
      mkdirSync(join(dir, 'src/models'), { recursive: true });
      writeFileSync(join(dir, 'src/pools.yaml'), 'pools: []\n');
      writeFileSync(join(dir, 'src/models/tiny.bin'), randomBytes(40_000));
      const r = await cli(['--json', 'backup', 'run', '--name', 'ops-config', '--source', `config=${join(dir, 'src')}`, '--dest', `file://${join(dir, 'store')}`, '--wait']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal((r.json() as { status: string }).status, 'COMPLETED');
      const total = 40_000 + 'pools: []\n'.length;
      assert.equal(await metric('drydock_backup_bytes_total', 'backup="ops-config"'), total);
      assert.equal(await metric('drydock_backup_copied_bytes_total', 'backup="ops-config"'), total);
      assert.equal(await metric('drydock_backup_verifications_total', 'outcome="ok"'), 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the Grafana dashboard's SDK panels query metrics the worker really serves", async () => {
    const text = await (await fetch(metricsUrl)).text();
    const dash = readFileSync(join(REPO_ROOT, 'deploy/grafana/drydock-dashboard.json'), 'utf8');
    const sdkNames = new Set([...dash.matchAll(/\btemporal_[a-z_]+/g)].map((m) => m[0].replace(/_(bucket|count|sum)$/, '')));
    // Counted on the first activity failure, and no activity fails in this run.
    sdkNames.delete('temporal_activity_execution_failed');
    assert.ok(sdkNames.size >= 4);
    const missing = [...sdkNames].filter((n) => !new RegExp(`^${n}(_bucket|_count|_sum)?\\{`, 'm').test(text));
    assert.deepEqual(missing, []);
  });

  it('pool status lists the replacements of the pool with node, phase and status', async () => {
    await replaceOnce();
    await failOnce();
    const r = await cli(['--json', 'pool', 'status', 'ops']);
    assert.equal(r.code, 0, r.stderr);
    const rows = (r.json() as { replacements: { node: string; status: string; phase: string }[] }).replacements;
    const byNode = Object.fromEntries(rows.map((row) => [row.node, row]));
    assert.equal(byNode[fleet.nodeIds[0]]?.status, 'COMPLETED');
    assert.equal(byNode[fleet.nodeIds[0]]?.phase, 'done');
    assert.equal(byNode[fleet.nodeIds[1]]?.status, 'FAILED');
    const human = await cli(['pool', 'status', 'ops']);
    assert.match(human.stdout, /pool ops: 0 replacement\(s\) running/);
  });

  it('on a terminal, --wait draws a progress bar of the phases', { skip: skipUnlessCi(NO_SCRIPT) }, async () => {
    requirePresent(NO_SCRIPT);
    const replaced = await replaceOnce();
    const cmd = `${process.execPath} ${join(REPO_ROOT, 'scripts/cli/drydock.mjs')} pool replace ops ${replaced.replacement} --drain-timeout 30 --wait`;
    const { stdout } = await promisify(execFile)('/usr/bin/script', ['-qfec', cmd, '/dev/null'], {
      cwd: REPO_ROOT,
      timeout: 120_000,
      env: { ...cliUserEnv, TEMPORAL_ADDRESS: env.address, TEMPORAL_NAMESPACE: 'default', DRYDOCK_TASK_QUEUE: TQ, DRYDOCK_CODEC_KEY: codecKey, COLUMNS: '160' },
    });
    assert.match(stdout, /replace\/ops\/\S+ [█░]{40} 6\/6 phases \| done \(/, 'a cli-progress bar, full at the end');
    assert.match(stdout, /replaced by \S+ in \d+\.\d s/);
  });

  it(
    'the Web UI shows the replaceNode run and its phases, decoded through the codec server',
    { skip: skipUnlessCi(NO_CHROMIUM) },
    async () => {
      requirePresent(NO_CHROMIUM);
      const replaced = await replaceOnce();
      const { chromium } = await import('playwright-core');
      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      });
      try {
        const page = await browser.newPage({ viewport: { width: 1440, height: 1100 } });
        const query = encodeURIComponent(`WorkflowType="replaceNode" AND DrydockPool="ops"`);
        await page.goto(`${uiUrl}/namespaces/default/workflows?query=${query}`);
        const link = page.getByRole('link', { name: replaced.workflowId, exact: true });
        await link.first().waitFor({ timeout: 60_000 });
        await link.first().click();
        await page.waitForURL(/\/history$/, { timeout: 60_000 });
        // The input is encrypted in Temporal: the UI can show the reason only through the codec server.
        await page.getByText(SECRET_REASON).first().waitFor({ timeout: 60_000 });
        // Each phase is an activity with a summary, drawn on the event timeline.
        for (const step of ['resolveNode • check', 'cordonNode • cordon', 'drainNode • drain', 'terminateNode • terminate', 'provisionNode • provision', 'waitNodeHealthy • wait until']) {
          await page.getByText(step).first().waitFor({ timeout: 30_000 });
        }
        assert.ok(await page.getByText('Completed', { exact: true }).first().isVisible());
        mkdirSync(join(REPO_ROOT, 'test-results'), { recursive: true });
        await page.screenshot({ path: join(REPO_ROOT, 'test-results/webui-replaceNode.png'), fullPage: true });

        // User Metadata: the CLI's static summary and details, and the workflow's current-details table.
        await page.getByText('User Metadata', { exact: true }).first().click();
        await page.waitForURL(/\/user-metadata$/, { timeout: 30_000 });
        // The UI renders markdown summaries and details in sandboxed iframes.
        const inSomeFrame = (text: string) =>
          waitFor(
            async () => (await Promise.all(page.frames().map((f) => f.content().catch(() => '')))).some((html) => html.includes(text)),
            30_000,
            `'${text}' on the User Metadata tab`,
          );
        await inSomeFrame(`replace ops/${replaced.node}`);
        await inSomeFrame(`Started by the drydock CLI. Reason: ${SECRET_REASON}.`);
        await page.getByText('Current Details', { exact: true }).first().waitFor({ timeout: 30_000 });
        // Current details: every phase with its duration on one line, so the short box shows all of it.
        await inSomeFrame('<strong>done</strong>');
        for (const phase of ['cordoning', 'draining', 'terminating', 'provisioning', 'waiting-healthy']) await inSomeFrame(`${phase} `);
        await page.screenshot({ path: join(REPO_ROOT, 'test-results/webui-replaceNode-metadata.png'), fullPage: true });
      } finally {
        await browser.close();
      }
    },
  );
});
