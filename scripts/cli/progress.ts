import cliProgress from 'cli-progress';

/** Progress of a running workflow: a bar on a terminal, one plain line per change otherwise (CI logs). */
export interface Progress {
  update(done: number, total: number, label: string): void;
  stop(): void;
}

export function createProgress(title: string, unit: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      { stream, format: `${title} {bar} {value}/{total} ${unit} | {label}`, hideCursor: true, clearOnComplete: false },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      update(done, total, label) {
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
