import { chmodSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { devServerDynamicConfigArgs, type ServerDynamicConfig } from '../../workers/serverSettings.ts';
import { DRYDOCK_SEARCH_ATTRIBUTES } from '../../workflows/searchAttributes.ts';

/** The Temporal CLI built by scripts/install-temporal.sh (npm test exports its path). */
export function temporalBin(): string {
  const bin = process.env.DRYDOCK_TEMPORAL_BIN ?? join(homedir(), '.cache/drydock/temporal-v1.5.1/temporal');
  if (!existsSync(bin)) throw new Error(`Temporal CLI not found at ${bin}: run 'bash scripts/install-temporal.sh' (npm test does)`);
  return bin;
}

let quietBin: { path: string; log: string } | undefined;

/**
 * The CLI behind a wrapper that sends its output to a log file. The SDK starts the server with
 * this process's stdout, and a test file's stdout is the channel its results reach the test
 * runner by: a server line written into the middle of a result (a restart's banner, a slow-call
 * warning) corrupts it, and the runner then waits forever.
 */
export function quietTemporalBin(): { path: string; log: string } {
  if (!quietBin) {
    const dir = mkdtempSync(join(tmpdir(), 'drydock-temporal-'));
    const path = join(dir, 'temporal');
    const log = join(dir, 'server.log');
    const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
    writeFileSync(path, `#!/bin/sh\nexec ${quote(temporalBin())} "$@" >>${quote(log)} 2>&1\n`);
    chmodSync(path, 0o755);
    quietBin = { path, log };
  }
  return quietBin;
}

/** A real Temporal dev server with drydock's search attributes (and `extraSearchAttributes`) and server settings (changed by `dynamicConfig`). */
export function startDevServer(
  opts: {
    port?: number;
    dbFilename?: string;
    extraArgs?: string[];
    extraSearchAttributes?: ReturnType<typeof defineSearchAttributeKey<SearchAttributeType>>[];
    dynamicConfig?: Partial<ServerDynamicConfig>;
  } = {},
): Promise<TestWorkflowEnvironment> {
  const { extraSearchAttributes = [], extraArgs = [], dynamicConfig, ...server } = opts;
  return TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: quietTemporalBin().path },
      searchAttributes: [...DRYDOCK_SEARCH_ATTRIBUTES, ...extraSearchAttributes],
      extraArgs: [...devServerDynamicConfigArgs(dynamicConfig), ...extraArgs],
      ...server,
    },
  });
}
