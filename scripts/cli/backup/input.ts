import type { Command } from 'commander';
import { parseBackupInput, type BackupInput, type BackupSourceInput } from '../../../workflows/inputs/backup.ts';
import { collect, positiveNumber } from '../flags.ts';
import { badInput, checkedInput } from '../runtime.ts';
import { readSpecFile } from '../spec.ts';

/** The backup input of `backup run` and `backup schedule create`: --spec with flags on top, checked by the workflow's parser. */

export interface SpecFlags {
  spec?: string;
  name?: string;
  source?: string[];
  dest?: string;
  keepLast?: number;
  maxAgeDays?: number;
  verify?: boolean;
}

/** The flags that build a backup input, shared by `run` and `schedule create`. */
export function specOptions(c: Command): Command {
  return c
    .option('--spec <file>', 'the backup input as YAML or JSON (name, sources, destination, retention, hooks)')
    .option('--name <name>', 'backup name (overrides the spec)')
    .option('--source <name=path>', 'a directory to back up; repeat for more (overrides the spec sources)', collect)
    .option('--dest <url>', 'file:///dir, /dir or s3://bucket/prefix (overrides the spec)')
    .option('--keep-last <n>', 'retention: keep this many newest backups', (v) => Math.round(positiveNumber(v)))
    .option('--max-age-days <days>', 'retention: delete backups older than this', positiveNumber)
    .option('--no-verify', 'skip the restore test after the copy (retention then does not run)');
}

/** The backup input from --spec, with flags overriding its fields. */
export function backupInput(flags: SpecFlags): BackupInput {
  const input = flags.spec ? readSpecFile(flags.spec, '--spec', 'the backup input') : {};
  if (flags.name) input.name = flags.name;
  if (flags.dest) input.destination = flags.dest;
  if (flags.source?.length) {
    input.sources = flags.source.map((s): BackupSourceInput => {
      const eq = s.indexOf('=');
      if (eq <= 0) throw badInput(`--source: '${s}' must be name=/absolute/path`);
      return { type: 'files', name: s.slice(0, eq), path: s.slice(eq + 1) };
    });
  }
  if (flags.keepLast !== undefined || flags.maxAgeDays !== undefined) {
    input.retention = { ...(input.retention as object), ...(flags.keepLast !== undefined ? { keepLast: flags.keepLast } : {}), ...(flags.maxAgeDays !== undefined ? { maxAgeDays: flags.maxAgeDays } : {}) };
  }
  if (flags.verify === false) input.verify = false;
  checkedInput(() => parseBackupInput(input));
  return input as unknown as BackupInput;
}
