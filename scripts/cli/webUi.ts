import { connectConfig } from '../../workers/connection.ts';

/**
 * Where the Web UI shows a workflow: Temporal Cloud, or a dev server on this machine (its UI
 * listens on the frontend port + 1000). Undefined for other servers, whose UI address we cannot know.
 */
export function webUiUrl(address: string, namespace: string, workflowId: string, runId?: string): string | undefined {
  const path = `/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}${runId ? `/${runId}` : ''}`;
  // host:port, with an IPv6 host in brackets ([::1]:7233).
  const m = /^(?:\[(?<v6>[^\]]+)\]|(?<name>[^:]+))(?::(?<port>\d+))?$/.exec(address);
  const host = m?.groups?.v6 ?? m?.groups?.name ?? '';
  if (host.endsWith('.tmprl.cloud')) return `https://cloud.temporal.io${path}`;
  if (['localhost', '127.0.0.1', '::1'].includes(host)) return `http://localhost:${Number(m?.groups?.port ?? 7233) + 1000}${path}`;
  return undefined;
}

/** The Web UI line for a workflow under the operator's connection settings: its URL, or where to look it up. */
export function webUiLine(workflowId: string, runId?: string): string {
  const { connectionOptions, namespace } = connectConfig();
  const url = webUiUrl(connectionOptions.address ?? 'localhost:7233', namespace, workflowId, runId);
  return url ?? `namespace ${namespace}, workflow id ${workflowId}`;
}
