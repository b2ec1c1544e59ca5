import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
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
      executable: { type: 'existing-path', path: temporalBin() },
      searchAttributes: [...DRYDOCK_SEARCH_ATTRIBUTES, ...extraSearchAttributes],
      extraArgs: [...devServerDynamicConfigArgs(dynamicConfig), ...extraArgs],
      ...server,
    },
  });
}
