/**
 * Peak resident memory of this process during a phase. On Linux the kernel's high-water mark (VmHWM) is reset
 * at the start (`/proc/self/clear_refs` ← 5) and read at the end: exact, whatever happened between two samples.
 * Elsewhere, or when the reset is refused, the RSS sampled every 10 ms stands in (it can miss a short spike). The S3 server runs in a child process by default: its memory is not counted here.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export interface PeakRss {
  /** The highest RSS during the phase (bytes). */
  readonly peak_bytes: number;
  /** RSS when the phase started (bytes): the peak minus this is what the phase added. */
  readonly start_bytes: number;
  /**
   * Median and 95th percentile of RSS sampled every 10 ms: V8 frees Buffers (upload parts, zlib output) only
   * when it collects, so the peak depends on when collections fall; these move less from run to run.
   */
  readonly p50_bytes: number;
  readonly p95_bytes: number;
  /** `vmhwm` (kernel high-water mark) or `sampled`. */
  readonly method: 'vmhwm' | 'sampled';
}

let collect: (() => void) | undefined;

/**
 * A full garbage collection, so that a phase starts without the garbage of the one before (the bench runs
 * without --expose-gc: the flag is set at run time and `gc` read from a fresh context, then the flag unset).
 */
export function collectGarbage(): void {
  if (!collect) {
    setFlagsFromString('--expose-gc');
    collect = runInNewContext('gc') as () => void;
    setFlagsFromString('--no-expose-gc');
  }
  collect();
}

function highWaterMark(): number | undefined {
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return match?.[1] === undefined ? undefined : Number(match[1]) * 1024;
  } catch {
    return undefined;
  }
}

function resetHighWaterMark(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

/** Runs `work` after a full GC and returns its result with the process's peak RSS while it ran. */
export async function measurePeakRss<T>(work: () => Promise<T>): Promise<{ result: T; rss: PeakRss }> {
  collectGarbage();
  const start = process.memoryUsage().rss;
  const kernel = resetHighWaterMark() && highWaterMark() !== undefined;
  const samples: number[] = [start];
  const sampler = setInterval(() => samples.push(process.memoryUsage.rss()), 10);
  try {
    const result = await work();
    const hwm = kernel ? highWaterMark() : undefined;
    samples.push(process.memoryUsage.rss());
    const sorted = samples.sort((a, b) => a - b);
    const quantile = (q: number) =>
      sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? start;
    return {
      result,
      rss: {
        peak_bytes: Math.max(sorted[sorted.length - 1] ?? start, hwm ?? 0),
        start_bytes: start,
        p50_bytes: quantile(0.5),
        p95_bytes: quantile(0.95),
        method: hwm === undefined ? 'sampled' : 'vmhwm',
      },
    };
  } finally {
    clearInterval(sampler);
  }
}
