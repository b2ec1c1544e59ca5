/** `npm run dev:fault -- <nodeId> [xid]`: injects an XID on GPU 0 of a dev-stack node. */
import { LocalProvider } from '../activities/providers/local.ts';
import { devCredentials, loadDevConfig } from './devConfig.ts';

const [nodeId, xid = '79'] = process.argv.slice(2);
if (!nodeId) {
  console.error('usage: npm run dev:fault -- <nodeId> [xid code, default 79]');
  process.exit(2);
}
const config = loadDevConfig(process.env);
// The dev operator's control token (agent-tokens); the agent's audit log names it as dev-operator.
const creds = devCredentials(config.dir);
const node = await new LocalProvider(config.pool.provider, creds.auth).describe(nodeId);
if (!node?.agentUrl) {
  console.error(`dev:fault: node ${nodeId} is not running in the dev stack (is \`npm run dev\` up?)`);
  process.exit(2);
}
const res = await fetch(`${node.agentUrl}/sim/faults`, {
  method: 'POST',
  headers: { authorization: `Bearer ${creds.operatorToken}`, 'content-type': 'application/json' },
  body: JSON.stringify({ kind: 'xid', gpu: 0, code: Number(xid) }),
});
const body = (await res.json()) as { status?: string; reasons?: string[]; error?: string };
console.log(res.ok ? `${nodeId}: ${body.status} (${body.reasons?.join('; ')})` : `dev:fault: ${body.error}`);
process.exit(res.ok ? 0 : 1);
