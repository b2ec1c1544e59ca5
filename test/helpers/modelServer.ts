import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** How one served file misbehaves. */
export interface FileFaults {
  /** The first `times` responses close the connection after this many bytes of the body. */
  dropAfterBytes?: { bytes: number; times: number };
  /** Every response stops (connection closed) at this byte of the file: a truncated file. */
  truncateAt?: number;
  /** Serve slowly, so a test can act mid-download. */
  bytesPerSecond?: number;
}

export interface ServedRequest {
  path: string;
  range?: string;
  status: number;
  bytesSent: number;
  headers: IncomingMessage['headers'];
}

export interface ModelServer {
  base: string;
  requests: ServedRequest[];
  /** Adds (or replaces) a file at `path`, e.g. '/models/a.gguf'. */
  put(path: string, body: Buffer | string, faults?: FileFaults): void;
  close(): Promise<void>;
}

/**
 * A local model store over HTTP (or HTTPS with `tls`): files with ETags and range requests (206,
 * 416), redirects `/loop/a` ⇄ `/loop/b` forever, 404 for anything else, and per-file faults (a
 * dropped connection mid-file, a truncated file, a slow link). Records every request.
 */
export async function startModelServer(tls?: { cert: string; key: string }): Promise<ModelServer> {
  const files = new Map<string, { body: Buffer; etag: string; faults: FileFaults; served: number }>();
  const requests: ServedRequest[] = [];
  const handle = (req: IncomingMessage, res: ServerResponse) =>
    void (async () => {
      const path = (req.url ?? '/').split('?')[0];
      const rec: ServedRequest = { path, range: req.headers.range, status: 0, bytesSent: 0, headers: req.headers };
      requests.push(rec);
      if (path === '/loop/a' || path === '/loop/b') {
        rec.status = 302;
        res.writeHead(302, { location: path === '/loop/a' ? '/loop/b' : '/loop/a' }).end();
        return;
      }
      const f = files.get(path);
      if (!f) {
        rec.status = 404;
        res.writeHead(404).end('not found');
        return;
      }
      const total = f.body.length;
      let start = 0;
      const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      const ifRange = req.headers['if-range'];
      if (m && (!ifRange || ifRange === f.etag)) {
        start = Number(m[1]);
        if (start >= total) {
          rec.status = 416;
          res.writeHead(416, { 'content-range': `bytes */${total}` }).end();
          return;
        }
        rec.status = 206;
        res.writeHead(206, { 'content-range': `bytes ${start}-${total - 1}/${total}`, 'content-length': total - start, etag: f.etag, 'accept-ranges': 'bytes' });
      } else {
        rec.status = 200;
        res.writeHead(200, { 'content-length': total, etag: f.etag, 'accept-ranges': 'bytes' });
      }
      const n = f.served++;
      let stopAt = total;
      if (f.faults.truncateAt !== undefined) stopAt = Math.min(stopAt, f.faults.truncateAt);
      if (f.faults.dropAfterBytes && n < f.faults.dropAfterBytes.times) stopAt = Math.min(stopAt, start + f.faults.dropAfterBytes.bytes);
      const chunk = 16 * 1024;
      for (let at = start; at < stopAt; at += chunk) {
        if (res.destroyed) return;
        const piece = f.body.subarray(at, Math.min(stopAt, at + chunk));
        if (!res.write(piece)) await new Promise((r) => res.once('drain', r));
        rec.bytesSent += piece.length;
        if (f.faults.bytesPerSecond) await sleep((piece.length / f.faults.bytesPerSecond) * 1000);
      }
      if (stopAt < total) {
        // The connection drops mid-file (after the headers, even when no byte of the body went out).
        res.flushHeaders();
        await sleep(20);
        res.destroy();
      }
      else res.end();
    })();
  const server: Server = tls ? createHttpsServer({ cert: readFileSync(tls.cert), key: readFileSync(tls.key) }, handle) : createHttpServer(handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    base: `${tls ? 'https' : 'http'}://${tls ? 'localhost' : '127.0.0.1'}:${port}`,
    requests,
    put(path, body, faults = {}) {
      const buf = typeof body === 'string' ? readFileSync(body) : body;
      files.set(path, { body: buf, etag: `"${createHash('sha256').update(buf).digest('hex').slice(0, 16)}"`, faults, served: 0 });
    },
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}
