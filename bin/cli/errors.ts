/** Invalid command line, config or input: exit code 2, nothing touched. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
