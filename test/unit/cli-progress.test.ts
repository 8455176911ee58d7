/**
 * The progress line of long commands (bin/cli/progress.ts): rewritten in place on a terminal with rows, rate,
 * chunks, bytes, elapsed (and rows of eligible with an ETA when the run knows them), cleared at the end, and
 * never written to a stream that is not a terminal.
 */
import { describe, expect, it } from 'vitest';
import { progressLine } from '../../bin/cli/progress.ts';

/** A stream that records what is written; a terminal when `isTTY`. */
function fakeStream(isTTY: boolean, columns?: number) {
  const writes: string[] = [];
  return { isTTY, columns, writes, write: (text: string) => writes.push(text) > 0 };
}

describe('progress line', () => {
  it('rewrites one line per update on a terminal and clears it at the end', () => {
    // Prepare
    const stream = fakeStream(true);
    let now = 1_000_000;
    const line = progressLine(stream, 'logs-purge', () => now);

    // Act
    now += 2000;
    line?.update({ rows: 1500, chunks: 3, bytes: 12_000 });
    line?.end();
    line?.update({ rows: 9999, chunks: 9, bytes: 0 });

    // Assess
    expect(stream.writes).toEqual([
      '\r\x1b[Klogs-purge: 0 rows · 0 rows/s · 0 chunks · 0 B · 0:00 elapsed',
      '\r\x1b[Klogs-purge: 1,500 rows · 750 rows/s · 3 chunks · 12.0 kB · 0:02 elapsed',
      '\r\x1b[K',
    ]);
  });

  it('shows rows of eligible and an ETA when the run knows what is eligible', () => {
    const stream = fakeStream(true);
    let now = 0;
    const line = progressLine(stream, 'p', () => now);
    now = 3_723_000;
    line?.update({ rows: 1000, chunks: 10, bytes: 0, eligible: 4000 });
    line?.end();
    expect(stream.writes[1]).toBe(
      '\r\x1b[Kp: 1,000 / 4,000 rows · 0 rows/s · 10 chunks · 0 B · 1:02:03 elapsed · ETA 3:06:09',
    );
  });

  it('fits the line in the terminal so that \\r rewrites it instead of wrapping', () => {
    const stream = fakeStream(true, 20);
    progressLine(stream, 'a-long-policy-name', () => 0)?.end();
    expect(stream.writes[0]).toBe('\r\x1b[Ka-long-policy-name:');
  });

  it('writes nothing to a stream that is not a terminal', () => {
    const stream = fakeStream(false);
    expect(progressLine(stream, 'p')).toBeUndefined();
    expect(stream.writes).toEqual([]);
  });
});
