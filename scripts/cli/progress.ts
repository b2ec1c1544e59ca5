import cliProgress from 'cli-progress';

/** Progress of a running workflow: a bar on a terminal, one plain line per change otherwise (CI logs). */
export interface Progress {
  update(done: number, total: number, label: string): void;
  stop(): void;
}

/** Where progress goes: stderr, so that stdout holds only the result (and --json stays parseable). */
export type ProgressStream = NodeJS.WritableStream & { isTTY?: boolean };

export function createProgress(title: string, unit: string, stream: ProgressStream = process.stderr): Progress {
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      { stream, format: `${title} {bar} {value}/{total} ${unit} | {label}`, hideCursor: true, clearOnComplete: false },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      update(done, total, label) {
        // cli-progress draws 0/0 as a full bar: wait until the total is known.
        if (!started && total <= 0) return;
        if (!started) {
          bar.start(total, done, { label });
          started = true;
        } else {
          bar.setTotal(total);
          bar.update(done, { label });
        }
      },
      stop: () => started && bar.stop(),
    };
  }
  let last = '';
  return {
    update(done, total, label) {
      const line = `${title}: ${label} (${done}/${total} ${unit})`;
      if (line !== last) stream.write(`${new Date().toISOString()} ${line}\n`);
      last = line;
    },
    stop() {},
  };
}
