import { WorkflowFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure, TerminatedFailure, TimeoutFailure } from '@temporalio/common';
import type { Command } from 'commander';
import { CONTROL_WORKER_DEFAULTS } from '../../workers/config.ts';
import { CodecConfigError } from '../../workers/codec.ts';
import { connectClient } from '../../workers/connection.ts';
import { INVALID_ARGUMENT } from '../../workflows/common/errors.ts';

/** Exit codes are part of the CLI's contract with CI jobs. */
export const EXIT = { ok: 0, workflowFailed: 1, badInput: 2, unreachable: 3 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** How long to try reaching Temporal before exit code 3. */
const CONNECT_TIMEOUT_MS = 5_000;

export class CliError extends Error {
  constructor(readonly exitCode: ExitCode, message: string, readonly details?: unknown) {
    super(message);
  }
}

export const badInput = (message: string) => new CliError(EXIT.badInput, message);

export interface GlobalOptions {
  json: boolean;
  address?: string;
  namespace?: string;
  profile?: string;
  taskQueue: string;
}

export function globals(cmd: Command): GlobalOptions {
  const o = cmd.optsWithGlobals<Partial<GlobalOptions>>();
  return {
    json: Boolean(o.json),
    address: o.address,
    namespace: o.namespace,
    profile: o.profile,
    taskQueue: o.taskQueue ?? process.env.DRYDOCK_TASK_QUEUE ?? CONTROL_WORKER_DEFAULTS.taskQueue,
  };
}

/** Flags win over env, the same precedence as the `temporal` CLI; envconfig reads the result. */
function applyConnectionFlags(o: GlobalOptions): void {
  if (o.address) process.env.TEMPORAL_ADDRESS = o.address;
  if (o.namespace) process.env.TEMPORAL_NAMESPACE = o.namespace;
  if (o.profile) process.env.TEMPORAL_PROFILE = o.profile;
}

const grpcCodes = (err: unknown) => [err, (err as { cause?: unknown })?.cause].map((e) => (e as { code?: unknown })?.code);

/** gRPC UNAVAILABLE (14) or DEADLINE_EXCEEDED (4) on a call: the server went away mid-command. */
export function isUnreachable(err: unknown): boolean {
  const codes = grpcCodes(err);
  return codes.includes(14) || codes.includes(4);
}

/**
 * gRPC UNAVAILABLE alone: the server itself is gone. A query no worker answers times out instead
 * (DEADLINE_EXCEEDED), which is no reason to stop watching.
 */
export function serverGone(err: unknown): boolean {
  return grpcCodes(err).includes(14);
}

/** Connects with the operator's Temporal settings (profile, TEMPORAL_* env, flags) and runs `fn`. */
export async function withClient<T>(o: GlobalOptions, fn: (client: Client) => Promise<T>): Promise<T> {
  applyConnectionFlags(o);
  let client: Client;
  try {
    client = await connectClient({ connectTimeout: CONNECT_TIMEOUT_MS });
  } catch (err) {
    if (err instanceof CodecConfigError) throw badInput(err.message);
    const addr = process.env.TEMPORAL_ADDRESS ?? 'localhost:7233';
    throw new CliError(EXIT.unreachable, `cannot reach Temporal at ${addr}: ${(err as Error).message}. Check TEMPORAL_ADDRESS / --address, TLS and API key settings.`);
  }
  try {
    return await fn(client);
  } catch (err) {
    if (err instanceof CliError) throw err;
    if (isUnreachable(err)) throw new CliError(EXIT.unreachable, `lost the connection to Temporal: ${(err as Error).message}`);
    throw err;
  } finally {
    await client.connection.close();
  }
}

/** Runs a workflow's own input parser, so the CLI refuses exactly what the workflow would (exit 2). */
export function checkedInput<T>(parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof ApplicationFailure && err.type === INVALID_ARGUMENT) throw badInput(err.message);
    throw err;
  }
}

/** Maps a workflow's failure to the CLI contract: bad input 2, anything else 1. */
export function workflowFailure(err: unknown, workflowId: string): CliError {
  const cause = err instanceof WorkflowFailedError ? err.cause : err;
  const type = cause instanceof ApplicationFailure ? cause.type : undefined;
  const message = (cause as Error)?.message ?? String(cause);
  const status =
    cause instanceof CancelledFailure ? 'CANCELLED' : cause instanceof TerminatedFailure ? 'TERMINATED' : cause instanceof TimeoutFailure ? 'TIMED_OUT' : 'FAILED';
  const details = { status, workflowId, error: { type: type ?? (cause as Error)?.name, message } };
  if (type === INVALID_ARGUMENT) return new CliError(EXIT.badInput, `${workflowId} rejected its input: ${message}`, details);
  const what = status === 'FAILED' ? `failed${type ? ` (${type})` : ''}` : `was ${status.toLowerCase().replace('_', ' ')}`;
  return new CliError(EXIT.workflowFailed, `${workflowId} ${what}: ${message}`, details);
}

/** Writes the machine-readable or the human form of a result to stdout. */
export function output(o: GlobalOptions, value: unknown, human: () => string): void {
  process.stdout.write(o.json ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`);
}
