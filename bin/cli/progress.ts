/**
 * A live progress line for long commands: rewritten in place (`\r`) on an interactive stream, cleared when the
 * command ends, so the result printed after it stands alone. Nothing is written to a stream that is not a TTY
 * (a pipe, a file, CI logs): callers ask `progressLine` and get undefined there.
 */
import { formatBytes } from './format.ts';

/** The part of a tty.WriteStream the line needs (tests hand in a fake with isTTY true). */
export interface ProgressStream {
  readonly isTTY?: boolean | undefined;
  readonly columns?: number | undefined;
  write(text: string): unknown;
}

/** What a run has done so far; `eligible` only when the run knows it (then rows/eligible and an ETA). */
export interface ProgressCounts {
  readonly rows: number;
  readonly chunks: number;
  readonly bytes: number;
  readonly eligible?: number | undefined;
}

export interface ProgressLine {
  update(counts: ProgressCounts): void;
  /** Clears the line and stops its clock. */
  end(): void;
}

const clock = (ms: number) => {
  const s = Math.max(0, Math.round(ms / 1000));
  const mm = `${Math.floor((s % 3600) / 60)}`.padStart(s >= 3600 ? 2 : 1, '0');
  return `${s >= 3600 ? `${Math.floor(s / 3600)}:` : ''}${mm}:${`${s % 60}`.padStart(2, '0')}`;
};

/** A progress line labelled `label` on `stream`, or undefined when the stream is not a TTY. */
export function progressLine(
  stream: ProgressStream,
  label: string,
  now = Date.now,
): ProgressLine | undefined {
  if (!stream.isTTY) return undefined;
  const started = now();
  let counts: ProgressCounts = { rows: 0, chunks: 0, bytes: 0 };
  let ended = false;
  const draw = () => {
    const elapsed = now() - started;
    const rate = elapsed > 0 ? counts.rows / (elapsed / 1000) : 0;
    const { rows, eligible } = counts;
    const parts = [
      `${label}: ${rows.toLocaleString('en-US')}${eligible === undefined ? '' : ` / ${eligible.toLocaleString('en-US')}`} rows`,
      `${Math.round(rate).toLocaleString('en-US')} rows/s`,
      `${counts.chunks} chunks`,
      formatBytes(counts.bytes),
      `${clock(elapsed)} elapsed`,
    ];
    if (eligible !== undefined && rate > 0 && rows < eligible)
      parts.push(`ETA ${clock(((eligible - rows) / rate) * 1000)}`);
    const text = parts.join(' · ');
    stream.write(`\r\x1b[K${stream.columns ? text.slice(0, stream.columns - 1) : text}`);
  };
  // Elapsed and rows/s move between chunks too: a long chunk, a pause, a wait for a lagging replica.
  const timer = setInterval(draw, 1000);
  timer.unref();
  draw();
  return {
    update: (next) => {
      counts = { ...next };
      if (!ended) draw();
    },
    end: () => {
      if (ended) return;
      ended = true;
      clearInterval(timer);
      stream.write('\r\x1b[K');
    },
  };
}
