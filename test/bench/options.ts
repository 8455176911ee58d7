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

/** `parse(argv)`, or undefined after printing why the command line is wrong (the benchmark then exits 2). */
export function commandLine<T>(parse: (argv: string[]) => T, argv: string[]): T | undefined {
  try {
    return parse(argv);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    return undefined;
  }
}

/** The benchmark's progress lines on stderr (stdout carries only the result). */
export function progressLine(benchmark: string): (text: string) => void {
  return (text) => process.stderr.write(`[bench ${benchmark}] ${text}\n`);
}
