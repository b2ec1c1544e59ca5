import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, constants, openSync, readSync, statSync, watch } from 'node:fs';
import { uptime } from 'node:os';
import { createInterface } from 'node:readline';
import { normalizePciBusId, type XidEvent } from './types.ts';

/** An XID line parsed from the kernel log, before it is mapped to a GPU. */
export interface ParsedXid {
  pciBusId: string;
  code: number;
  message: string;
  /** When the kernel logged it, if the line says (kmsg, ISO syslog); else undefined. */
  at?: string;
}

// NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, name=python, GPU has fallen off the bus.
const XID_RE = /NVRM: Xid \(PCI:([0-9a-fA-F:.]+)\): (\d+),\s*(.*)$/;
// /dev/kmsg records: "priority,sequence,microseconds-since-boot,flags;message"
const KMSG_RE = /^\d+,\d+,(\d+),[^;]*;/;
// journalctl -o short-iso / rsyslog RFC 3339 prefixes
const ISO_RE = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))\s/;

/** Parses one kernel log line (kmsg, dmesg, syslog or journalctl format); undefined if it is no XID. */
export function parseXidLine(line: string, bootTimeMs = Date.now() - uptime() * 1000): ParsedXid | undefined {
  const m = XID_RE.exec(line);
  if (!m) return undefined;
  let at: string | undefined;
  const k = KMSG_RE.exec(line);
  if (k) at = new Date(bootTimeMs + Number(k[1]) / 1000).toISOString();
  else {
    const iso = ISO_RE.exec(line);
    if (iso && !Number.isNaN(Date.parse(iso[1]))) at = new Date(iso[1]).toISOString();
  }
  return { pciBusId: normalizePciBusId(m[1]), code: Number(m[2]), message: m[3].trim(), at };
}

export interface XidCount {
  code: number;
  gpuIndex: number;
  count: number;
  firstAt: string;
  lastAt: string;
}

interface CountEntry extends XidCount {
  last: XidEvent;
}

/** Recent XID events (a bounded buffer) plus counts by GPU and code since the agent started. */
export class XidLog {
  private events: XidEvent[] = [];
  private counts = new Map<string, CountEntry>();

  constructor(private readonly maxEvents = 256, private readonly onEvent: (e: XidEvent) => void = () => {}) {}

  record(e: XidEvent): void {
    this.events.push(e);
    if (this.events.length > this.maxEvents) this.events.splice(0, this.events.length - this.maxEvents);
    const key = `${e.gpuIndex}/${e.code}`;
    const c = this.counts.get(key);
    if (c) {
      c.count++;
      c.lastAt = e.at;
      c.last = e;
    } else this.counts.set(key, { code: e.code, gpuIndex: e.gpuIndex, count: 1, firstAt: e.at, lastAt: e.at, last: e });
    this.onEvent(e);
  }

  recent(): XidEvent[] {
    return this.events.map((e) => ({ ...e }));
  }

  summary(): XidCount[] {
    return [...this.counts.values()].map(({ last: _last, ...c }) => c);
  }

  /**
   * What health is judged on: the recent events, plus the latest event of every GPU/code pair that
   * has fallen out of the buffer, so a burst of minor XIDs can never push out a fatal one.
   */
  forHealth(): XidEvent[] {
    const recent = this.recent();
    const inRecent = new Set(recent.map((e) => `${e.gpuIndex}/${e.code}`));
    const evicted = [...this.counts.entries()].filter(([k]) => !inRecent.has(k)).map(([, c]) => ({ ...c.last }));
    return [...evicted, ...recent];
  }

  clear(): void {
    this.events = [];
    this.counts.clear();
  }
}

/** Where XID lines come from: `auto` tries /dev/kmsg, then `journalctl -k -f`; `file:PATH` follows a file. */
export type KernelLogSource = 'auto' | 'kmsg' | 'journal' | 'none' | `file:${string}`;

/**
 * Follows the kernel log and hands each XID line to `onXid`. /dev/kmsg is read from the start of
 * the ring buffer (an XID since boot still matters: the GPU has not been reset); a file is followed
 * from its current end (old lines in a rotated syslog are history).
 */
export class KernelLogWatcher {
  private closeFd?: () => void;
  private child?: ChildProcess;
  private timer?: NodeJS.Timeout;
  /** Which source is in use, or why none is. */
  using = 'none';

  constructor(private readonly source: KernelLogSource, private readonly onXid: (x: ParsedXid) => void) {}

  start(): void {
    if (this.source === 'none') return;
    if (this.source.startsWith('file:')) return this.followFile(this.source.slice(5));
    if (this.source === 'kmsg' || this.source === 'auto') {
      try {
        closeSync(openSync('/dev/kmsg', 'r'));
        return this.followKmsg();
      } catch (err) {
        if (this.source === 'kmsg') throw new Error(`--kernel-log kmsg: cannot read /dev/kmsg (${(err as Error).message})`);
      }
    }
    this.followJournal();
  }

  stop(): void {
    this.closeFd?.();
    this.closeFd = undefined;
    this.child?.kill('SIGKILL');
    if (this.timer) clearInterval(this.timer);
  }

  private lines(input: NodeJS.ReadableStream): void {
    const rl = createInterface({ input });
    rl.on('line', (line) => {
      const x = parseXidLine(line);
      if (x) this.onXid(x);
    });
  }

  /**
   * /dev/kmsg is polled with non-blocking reads: a blocking read would park a libuv thread until the
   * next kernel message and keep the process from exiting. Each read returns one record.
   */
  private followKmsg(): void {
    this.using = 'kmsg';
    const fd = openSync('/dev/kmsg', constants.O_RDONLY | constants.O_NONBLOCK);
    const buf = Buffer.alloc(16 * 1024);
    const boot = Date.now() - uptime() * 1000;
    const poll = () => {
      for (;;) {
        let n: number;
        try {
          n = readSync(fd, buf, 0, buf.length, null);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'EPIPE') continue; // records were overwritten before we read them: go on with the next
          if (code !== 'EAGAIN') this.using = `kmsg failed: ${(err as Error).message}`;
          return;
        }
        if (n <= 0) return;
        const x = parseXidLine(buf.subarray(0, n).toString('utf8').split('\n')[0], boot);
        if (x) this.onXid(x);
      }
    };
    poll();
    // Each poll is one non-blocking read; 50 ms keeps an XID's way to the health watch short.
    this.timer = setInterval(poll, 50);
    this.timer.unref();
    this.closeFd = () => closeSync(fd);
  }

  private followJournal(): void {
    this.using = 'journal';
    this.child = spawn('journalctl', ['-k', '-f', '-n', 'all', '-o', 'short-iso'], { stdio: ['ignore', 'pipe', 'ignore'] });
    this.child.on('error', (err) => {
      this.using = `none (no /dev/kmsg, journalctl failed: ${err.message}; use --kernel-log file:PATH)`;
    });
    if (this.child.stdout) this.lines(this.child.stdout);
  }

  private followFile(path: string): void {
    this.using = `file:${path}`;
    let offset = 0;
    try {
      offset = statSync(path).size;
    } catch {
      /* not there yet: follow from its start once it appears */
    }
    let partial = '';
    const buf = Buffer.alloc(64 * 1024);
    const poll = () => {
      let fd: number;
      try {
        fd = openSync(path, 'r');
      } catch {
        return;
      }
      try {
        if (statSync(path).size < offset) offset = 0; // truncated or rotated
        for (;;) {
          const n = readSync(fd, buf, 0, buf.length, offset);
          if (n <= 0) break;
          offset += n;
          const text = partial + buf.subarray(0, n).toString('utf8');
          const parts = text.split('\n');
          partial = parts.pop() ?? '';
          for (const line of parts) {
            const x = parseXidLine(line);
            if (x) this.onXid(x);
          }
        }
      } finally {
        closeSync(fd);
      }
    };
    this.timer = setInterval(poll, 200);
    this.timer.unref();
    // inotify (where the file exists) reads a new line at once; the interval stays for rotation and missed events.
    try {
      const w = watch(path, { persistent: false }, () => poll());
      w.on('error', () => w.close());
      const stopTimer = this.closeFd;
      this.closeFd = () => {
        w.close();
        stopTimer?.();
      };
    } catch {
      /* not there yet: the interval picks it up */
    }
  }
}
