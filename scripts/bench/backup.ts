/**
 * Backup throughput vs `tar` of the same tree to the same disk, and the cost of a second backup
 * of the unchanged tree. Generates a 1 GiB tree of mixed file sizes under the temp dir and deletes
 * it afterwards. Runs the backup activities in-process (Temporal's activity test environment):
 * what is measured is the copy itself, not workflow scheduling.
 *
 *   node --import tsx scripts/bench/backup.ts [--gib 1]
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createBackupActivities } from '../../activities/backup/index.ts';
import { backupStamp } from '../../workflows/common/ids.ts';

const MIB = 1024 ** 2;
/** tar and backup alternate, so both see the same background load; the median ratio is reported. */
const ROUNDS = 3;
const gib = Number(process.argv[process.argv.indexOf('--gib') + 1] ?? 1) || 1;

/** Share of the bytes per file size: a few big model shards, medium chunks, many small files. */
const MIX = [
  { size: 128 * MIB, share: 0.5 },
  { size: 4 * MIB, share: 0.25 },
  { size: 64 * 1024, share: 0.125 },
  { size: 16 * 1024, share: 0.125 },
];

function generate(root: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  const block = randomBytes(4 * MIB);
  for (const { size, share } of MIX) {
    const n = Math.max(1, Math.round((gib * 1024 * MIB * share) / size));
    const dir = join(root, `${size >= MIB ? size / MIB + 'MiB' : size / 1024 + 'KiB'}`);
    for (let i = 0; i < n; i++) {
      const sub = join(dir, String(Math.floor(i / 256)));
      if (i % 256 === 0) mkdirSync(sub, { recursive: true });
      // Unique content per file (a counter stamped into each 4 MiB block), so nothing deduplicates by accident.
      const buf = Buffer.alloc(size);
      for (let off = 0; off < size; off += block.length) block.copy(buf, off, 0, Math.min(block.length, size - off));
      for (let off = 0; off < size; off += 4096) buf.writeUInt32LE(files, off);
      writeFileSync(join(sub, `f${i}.bin`), buf);
      files++;
      bytes += size;
    }
  }
  return { files, bytes };
}

function timeSync(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function time<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = process.hrtime.bigint();
  const v = await fn();
  return [v, Number(process.hrtime.bigint() - t0) / 1e9];
}

const sync = () => execFileSync('sync');

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'drydock-bench-backup-'));
  try {
    const src = join(root, 'src');
    const { files, bytes } = generate(src);
    sync();
    console.log(`tree: ${files} files, ${(bytes / MIB).toFixed(0)} MiB (${MIX.map((m) => `${(m.share * 100).toFixed(1)}% in ${m.size >= MIB ? m.size / MIB + ' MiB' : m.size / 1024 + ' KiB'} files`).join(', ')})`);
    execFileSync('tar', ['-cf', '/dev/null', '-C', src, '.']); // warm the page cache for both contestants alike

    const acts = createBackupActivities({ pools: { get: () => { throw new Error('no pools in the benchmark'); } } });
    const env = new MockActivityEnvironment();
    const run = <A extends unknown[], R>(fn: (...a: A) => Promise<R>, ...args: A): Promise<R> => env.run(fn, ...args) as Promise<R>;
    const backup = async (store: string, at: Date) => {
      const backupId = `bench/${backupStamp(at)}`;
      const [copy, copySecs] = await time(() => run(acts.copySource, { store, backupId, source: { name: 'tree', path: src } }));
      const [, manifestSecs] = await time(() =>
        run(acts.writeManifest, { store, backupId, name: 'bench', workflowId: `backup/${backupId}`, runId: 'bench', startedAt: at.toISOString(), phase: 'Completed' as const, sources: [{ name: 'tree', type: 'files' as const, origin: src }], hooks: [] }),
      );
      const syncSecs = timeSync(sync);
      return { backupId, copy, parts: `copy ${copySecs.toFixed(2)} s + manifest ${manifestSecs.toFixed(2)} s + sync ${syncSecs.toFixed(2)} s` };
    };

    // Outputs stay until the end: deleting 10 000 files between rounds (ext4 with discard) slowed the next round's file creation.
    const rows: { tar: number; backup: number }[] = [];
    let second: { secs: number; copiedBytes: number; copiedFiles: number; unchanged: number } | undefined;
    let verifySecs = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const tarFile = join(root, `out-${round}.tar`);
      const tarSecs = timeSync(() => {
        execFileSync('tar', ['-cf', tarFile, '-C', src, '.']);
        sync();
      });
      const store = `file://${join(root, `store-${round}`)}`;
      const [first, backupSecs] = await time(() => backup(store, new Date(Date.now() - 1000)));
      if (first.copy.copiedBytes !== bytes) throw new Error(`first backup copied ${first.copy.copiedBytes} of ${bytes} bytes`);
      rows.push({ tar: tarSecs, backup: backupSecs });
      console.log(`round ${round + 1}/${ROUNDS}: tar ${tarSecs.toFixed(2)} s (${(bytes / MIB / tarSecs).toFixed(0)} MiB/s), drydock backup ${backupSecs.toFixed(2)} s (${(bytes / MIB / backupSecs).toFixed(0)} MiB/s: ${first.parts})`);
      if (round === ROUNDS - 1) {
        const [again, secs] = await time(() => backup(store, new Date()));
        second = { secs, copiedBytes: again.copy.copiedBytes, copiedFiles: again.copy.copiedFiles, unchanged: again.copy.unchangedFiles };
        const [, v] = await time(() => run(acts.verifyBackup, { store, backupId: again.backupId }));
        verifySecs = v;
      }
    }
    const ratios = rows.map((r) => r.tar / r.backup).sort((a, b) => a - b);
    const ratio = ratios[Math.floor(ratios.length / 2)];
    console.log('');
    console.log(`backup throughput / tar throughput, median of ${ROUNDS} rounds: ${ratio.toFixed(2)}x (rounds: ${rows.map((r) => (r.tar / r.backup).toFixed(2)).join(', ')})  (goal >= 0.80x)  ${ratio >= 0.8 ? 'MET' : 'NOT MET'}`);
    console.log(`second backup of the unchanged tree: ${second!.copiedBytes} bytes in ${second!.copiedFiles} files copied, ${second!.unchanged} of ${files} files recognised unchanged without reading, ${second!.secs.toFixed(2)} s  (goal: close to 0 bytes)`);
    console.log(`verification by restore of ${(bytes / MIB).toFixed(0)} MiB: ${verifySecs.toFixed(2)} s (${(bytes / MIB / verifySecs).toFixed(0)} MiB/s)`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
