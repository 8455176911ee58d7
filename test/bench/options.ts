/** Option parsing every benchmark shares: its usage error and positive integer options. */

/** Bad command-line input: the benchmark prints it with its usage and exits 2. */
export class UsageError extends Error {}

/** `--name` as a positive safe integer, `fallback` when absent. @throws UsageError */
export function positiveInt(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1)
    throw new UsageError(`--${name} must be a positive integer, got "${text}"`);
  return value;
}

/** `--name` as one of `choices`, `fallback` when absent. @throws UsageError */
export function choice<T extends string>(
  name: string,
  text: string | undefined,
  choices: readonly T[],
  fallback: T,
): T {
  if (text === undefined) return fallback;
  const value = choices.find((c) => c === text);
  if (value === undefined)
    throw new UsageError(`--${name} must be one of ${choices.join(', ')}, got "${text}"`);
  return value;
}
