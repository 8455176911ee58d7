/** Small numeric helpers shared by the benchmarks. */

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/** Index of the run whose `value` is the (lower) median, so its details can stand for the whole set. */
export function medianIndex<T>(items: readonly T[], value: (item: T) => number): number {
  const order = items.map((item, index) => ({ index, v: value(item) })).sort((a, b) => a.v - b.v);
  return order[Math.floor((order.length - 1) / 2)]?.index ?? 0;
}

/** Rounds for reports: rates to integers, seconds and ratios to 3 decimals. */
export function round(value: number, digits = 3): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}
