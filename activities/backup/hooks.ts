import { execFile } from 'node:child_process';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { HookConfig } from '../../workflows/inputs/backup.ts';

/**
 * Runs one hook; any failure (exit code, HTTP status, timeout) throws with what happened. It
 * heartbeats while it waits, so a cancelled backup stops (kills) a running hook.
 */
export async function runHook(hook: HookConfig): Promise<void> {
  const ctx = Context.current();
  const beat = setInterval(() => ctx.heartbeat({ hook: hook.name }), 1000);
  try {
    await run(hook, ctx.cancellationSignal);
  } finally {
    clearInterval(beat);
  }
}

async function run(hook: HookConfig, cancelled: AbortSignal): Promise<void> {
  if (hook.exec) {
    const [cmd, ...args] = hook.exec;
    await new Promise<void>((resolve, reject) => {
      execFile(cmd, args, { timeout: hook.timeoutSeconds * 1000, killSignal: 'SIGKILL', signal: cancelled }, (err, _out, stderr) => {
        if (!err) return resolve();
        if (cancelled.aborted) return reject(cancelled.reason);
        const why = err.killed ? `timed out after ${hook.timeoutSeconds}s` : `failed: ${err.message.split('\n')[0]}`;
        reject(ApplicationFailure.nonRetryable(`hook '${hook.name}' (${hook.exec!.join(' ')}) ${why}${stderr ? `: ${stderr.trim().slice(0, 500)}` : ''}`, 'HookFailed'));
      });
    });
    return;
  }
  const http = hook.http!;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (http.tokenEnv) {
    const token = process.env[http.tokenEnv];
    if (!token) throw ApplicationFailure.nonRetryable(`hook '${hook.name}': env var ${http.tokenEnv} is not set on the worker`, 'HookFailed');
    headers.authorization = `Bearer ${token}`;
  }
  let res: Response;
  try {
    res = await fetch(http.url, {
      method: http.method,
      headers,
      body: http.method === 'POST' ? JSON.stringify(http.body ?? {}) : undefined,
      signal: AbortSignal.any([AbortSignal.timeout(hook.timeoutSeconds * 1000), cancelled]),
    });
  } catch (err) {
    if (cancelled.aborted) throw cancelled.reason;
    throw ApplicationFailure.nonRetryable(`hook '${hook.name}' (${http.method} ${http.url}) failed: ${(err as Error).message}`, 'HookFailed');
  }
  if (!res.ok) {
    const text = (await res.text()).slice(0, 300);
    throw ApplicationFailure.nonRetryable(`hook '${hook.name}' (${http.method} ${http.url}) answered ${res.status}: ${text}`, 'HookFailed');
  }
}
