import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { pathToFileURL } from 'node:url';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { codecFromEnv } from './codec.ts';

/**
 * The remote codec endpoint the Temporal Web UI and `temporal --codec-endpoint` call to show
 * encrypted payloads: POST /encode and POST /decode with `{"payloads": [{metadata, data}]}`,
 * bytes in base64. Anyone who can reach it can decrypt: bind it to loopback or put it behind
 * the same auth as the UI.
 */
export interface CodecServerConfig {
  host: string;
  port: number;
  /** Origins allowed by CORS: the Web UI's (e.g. http://localhost:8233). */
  corsOrigins: string[];
  /** When set, requests must carry `Authorization: Bearer <token>`. */
  token?: string;
}

export const CODEC_SERVER_DEFAULTS = { host: '127.0.0.1', port: 8888, corsOrigins: ['http://localhost:8233', 'http://127.0.0.1:8233'] } as const;

const MAX_BODY_BYTES = 8 * 1024 * 1024;

export function loadCodecServerConfig(env: NodeJS.ProcessEnv): CodecServerConfig {
  const [host, port] = (env.DRYDOCK_CODEC_SERVER_ADDRESS ?? `${CODEC_SERVER_DEFAULTS.host}:${CODEC_SERVER_DEFAULTS.port}`).split(/:(?=\d+$)/);
  if (!host || !/^\d+$/.test(port ?? '')) throw new Error(`DRYDOCK_CODEC_SERVER_ADDRESS: expected host:port, got '${env.DRYDOCK_CODEC_SERVER_ADDRESS}'`);
  const origins = env.DRYDOCK_CODEC_CORS_ORIGINS?.split(',').map((s) => s.trim()).filter(Boolean);
  return { host, port: Number(port), corsOrigins: origins ?? [...CODEC_SERVER_DEFAULTS.corsOrigins], token: env.DRYDOCK_CODEC_SERVER_TOKEN || undefined };
}

interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

function fromJson(p: JsonPayload): Payload {
  const metadata: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(p.metadata ?? {})) metadata[k] = Buffer.from(v, 'base64');
  return { metadata, data: Buffer.from(p.data ?? '', 'base64') };
}

function toJson(p: Payload): JsonPayload {
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(p.metadata ?? {})) if (v) metadata[k] = Buffer.from(v).toString('base64');
  return { metadata, data: Buffer.from(p.data ?? new Uint8Array()).toString('base64') };
}

async function readBody(req: IncomingMessage): Promise<string> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export function createCodecServer(codec: PayloadCodec, config: Pick<CodecServerConfig, 'corsOrigins' | 'token'>): Server {
  function cors(req: IncomingMessage, res: ServerResponse): void {
    const origin = req.headers.origin;
    if (origin && config.corsOrigins.includes(origin)) {
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('access-control-allow-credentials', 'true');
      res.setHeader('access-control-allow-methods', 'POST, OPTIONS');
      res.setHeader('access-control-allow-headers', 'content-type, x-namespace, authorization');
      res.setHeader('vary', 'origin');
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    cors(req, res);
    if (req.method === 'OPTIONS') {
      res.writeHead(204).end();
      return;
    }
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'POST' || (path !== '/encode' && path !== '/decode')) throw new HttpError(404, 'use POST /encode or POST /decode');
    if (config.token && req.headers.authorization !== `Bearer ${config.token}`) throw new HttpError(401, 'missing or wrong bearer token');
    let body: { payloads?: unknown };
    try {
      body = JSON.parse(await readBody(req)) as { payloads?: unknown };
    } catch (err) {
      if (err instanceof HttpError) throw err;
      throw new HttpError(400, 'body: expected JSON {"payloads": [...]}');
    }
    if (!Array.isArray(body.payloads)) throw new HttpError(400, 'payloads: expected an array of {metadata, data}');
    const payloads = (body.payloads as JsonPayload[]).map(fromJson);
    const out = path === '/encode' ? await codec.encode(payloads) : await codec.decode(payloads);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ payloads: out.map(toJson) }));
  }

  return createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : 400; // a payload the codec cannot read
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: (err as Error).message }));
    });
  });
}

async function main(): Promise<void> {
  const codec = codecFromEnv();
  if (!codec) {
    console.error('codec server: set DRYDOCK_CODEC_KEY or DRYDOCK_CODEC_KEY_FILE (the same keys as the workers)');
    process.exit(2);
  }
  const config = loadCodecServerConfig(process.env);
  const server = createCodecServer(codec, config);
  server.listen(config.port, config.host, () => {
    console.log(`codec server: http://${config.host}:${config.port} (CORS for ${config.corsOrigins.join(', ')}; active key ${codec.activeKeyId})`);
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => server.close(() => process.exit(0)));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    console.error('codec server failed:', (err as Error).message);
    process.exit(1);
  });
}
