/** Where a progress bar writes: stderr, or anything with `write` (and `isTTY`/`columns` when it is a terminal). */
export interface ProgressOutput {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** How a progress bar draws; every field has a default suited to stderr. */
export interface ProgressOptions {
  /** What is being done, e.g. a file name. */
  label: string;
  /** Total units (bytes) expected; 0 or unknown draws no percentage. */
  total: number;
  output?: ProgressOutput;
  /** Redraw in place; default: whether `output` is a TTY. */
  tty?: boolean;
  /** Without a TTY, at most one plain line per this many ms (the final line always prints). */
  plainIntervalMs?: number;
  now?: () => number;
}

/** A running progress display for one job measured in bytes. */
export interface ProgressBar {
  /** Reports the bytes done so far (absolute, not a delta). */
  update(done: number): void;
  /** Draws the final state and ends the line. */
  finish(): void;
  /** Ends the line without claiming completion (after an error or Ctrl-C). */
  abandon(note?: string): void;
}

const TTY_REDRAW_MS = 100;

/** Human-sized bytes: B, KB, MB or GB with one decimal. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB'] as const;
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

// "MB done/total" reads best for model-sized files; a 300-byte model card would only show 0.0/0.0 MB.
function amount(done: number, total: number): string {
  if (total >= 1_048_576 || (total <= 0 && done >= 1_048_576)) {
    const mb = (n: number) => (n / 1_048_576).toFixed(1);
    return total > 0 ? `${mb(done)}/${mb(total)} MB` : `${mb(done)} MB`;
  }
  return total > 0 ? `${formatBytes(done)}/${formatBytes(total)}` : formatBytes(done);
}

/**
 * A progress bar on a terminal (redrawn in place, throttled) or occasional plain lines elsewhere, so logs
 * and CI output stay readable.
 */
export function createProgressBar(options: ProgressOptions): ProgressBar {
  const output = options.output ?? process.stderr;
  const tty = options.tty ?? Boolean(output.isTTY);
  const now = options.now ?? Date.now;
  const plainIntervalMs = options.plainIntervalMs ?? 5_000;
  const { label, total } = options;
  const started = now();
  let done = 0;
  let lastDraw = -Infinity;
  let closed = false;

  const describe = (): string => {
    const elapsedS = Math.max((now() - started) / 1000, 0.001);
    const speed = `${formatBytes(Math.round(done / elapsedS))}/s`;
    if (total > 0) {
      const pct = Math.min(100, Math.floor((done / total) * 100));
      return `${String(pct).padStart(3)}%  ${amount(done, total)}  ${speed}`;
    }
    return `${amount(done, total)}  ${speed}`;
  };

  const drawTty = () => {
    const stats = describe();
    // A pseudo-terminal may report 0 columns.
    const columns = output.columns || 80;
    // Room for the label and the longest stats, so the bar keeps its width as the numbers change; a bar
    // narrower than 10 cells says nothing, so drop it.
    const width = Math.min(30, columns - label.length - 44);
    let bar = '';
    if (width >= 10 && total > 0) {
      const filled = Math.round(Math.min(1, done / total) * width);
      bar = ` [${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
    }
    // \x1b[K clears what a longer previous line left behind.
    output.write(`\r${label}${bar} ${stats}\x1b[K`);
  };

  return {
    update(value) {
      if (closed) return;
      done = value;
      const t = now();
      if (tty) {
        if (t - lastDraw >= TTY_REDRAW_MS) {
          lastDraw = t;
          drawTty();
        }
      } else if (lastDraw === -Infinity) {
        lastDraw = t;
      } else if (t - lastDraw >= plainIntervalMs) {
        lastDraw = t;
        output.write(`${label}: ${describe()}\n`);
      }
    },
    finish() {
      if (closed) return;
      closed = true;
      if (total > 0) done = Math.max(done, total);
      if (tty) {
        drawTty();
        output.write('\n');
      } else {
        output.write(`${label}: ${describe()}\n`);
      }
    },
    abandon(note) {
      if (closed) return;
      closed = true;
      if (tty) output.write(`\r${label}: ${note ?? 'stopped'} at ${describe()}\x1b[K\n`);
      else output.write(`${label}: ${note ?? 'stopped'} at ${describe()}\n`);
    },
  };
}
