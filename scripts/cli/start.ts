import { WorkflowExecutionAlreadyStartedError, type Client, type WorkflowHandle, type WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { badInput, output, withClient, type GlobalOptions } from './runtime.ts';

/**
 * Starting a workflow from the CLI, in one place: start it on the drydock task queue (an id that is
 * taken is bad input, exit 2, saying what to do), then print that it started, or wait for it and
 * print its result (its failure exits 1). Input is checked before, by the workflow's own parser.
 */

export interface StartRequest {
  /** The workflow type, e.g. 'rollingUpdate'. */
  type: string;
  workflowId: string;
  input: unknown;
  /** Shown in the Web UI's list. */
  summary: string;
  details?: string;
  /** The exit-2 message when the id is taken; without one, the SDK's error is reported as is. */
  alreadyStarted?: string;
  /** The id names one run for good (no second run, even after the first closed). */
  rejectDuplicate?: boolean;
}

export async function startWorkflow(client: Client, o: GlobalOptions, req: StartRequest): Promise<WorkflowHandleWithFirstExecutionRunId> {
  try {
    return await client.workflow.start(req.type, {
      taskQueue: o.taskQueue,
      workflowId: req.workflowId,
      ...(req.rejectDuplicate ? { workflowIdReusePolicy: 'REJECT_DUPLICATE' as const } : {}),
      args: [req.input],
      staticSummary: req.summary,
      ...(req.details ? { staticDetails: req.details } : {}),
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError && req.alreadyStarted) throw badInput(req.alreadyStarted);
    throw err;
  }
}

export interface StartReport<R> {
  /** Follows the run to its end (usually watchWorkflow); absent without --wait. */
  wait?: (handle: WorkflowHandle) => Promise<R>;
  /** The human form of the result. */
  resultText: (result: R) => string;
  /** More JSON fields that name what was started (a rollout's id and pool). */
  fields?: Record<string, unknown>;
  /** The human form of "started"; default `started <workflowId> (run <runId>)`. */
  startedText?: (runId: string) => string;
  /** With --wait, write the started text to stderr first, so people see where to follow it. */
  announce?: boolean;
}

/** Starts the workflow and prints `{workflowId, runId, status: RUNNING}`, or with `wait` its result `{…, status: COMPLETED, result}`. */
export async function startAndReport<R>(client: Client, o: GlobalOptions, req: StartRequest, report: StartReport<R>): Promise<void> {
  const handle = await startWorkflow(client, o, req);
  const started = { workflowId: req.workflowId, ...report.fields, runId: handle.firstExecutionRunId };
  const startedText = () => report.startedText?.(started.runId) ?? `started ${started.workflowId} (run ${started.runId})`;
  if (!report.wait) return output(o, { ...started, status: 'RUNNING' }, startedText);
  if (report.announce && !o.json) process.stderr.write(`${startedText()}\n`);
  const result = await report.wait(handle);
  output(o, { ...started, status: 'COMPLETED', result }, () => report.resultText(result));
}

/** startAndReport with its own connection (exit 3 when Temporal cannot be reached). */
export function runWorkflow<R>(o: GlobalOptions, req: StartRequest, report: StartReport<R>): Promise<void> {
  return withClient(o, (client) => startAndReport(client, o, req, report));
}
