/**
 * `pg-lifecycle`: parses argv with commander (program.ts), runs the command's action and returns the exit
 * code — it never exits the process itself. Results go to stdout, problems to stderr.
 *
 * Exit codes: 0 success; 1 a failure (a run failed, a check found a problem, the database could not be
 * reached); 2 invalid usage, config or input; 3 restore-archive waits for S3 (run it again later).
 */
import { describeError } from '../../functions/core/redact-database-error.ts';
import { ConfigError } from '../../lib/config-file.ts';
import { UnknownPolicyError } from '../../lib/execution-input.ts';
import { DatabaseUnreachableError } from './database-target.ts';
import { UsageError } from './errors.ts';
import { printError } from './handlers.ts';
import { buildProgram, CommandLineError, type Outcome } from './program.ts';

export { type ExecutionsQuery, recentExecutions } from './handlers.ts';

/** What commander ends with when it printed help: asked for (exit 0), or shown for a missing subcommand. */
const HELP_CODES = new Set(['commander.helpDisplayed', 'commander.help', 'commander.version']);

export async function main(argv: string[]): Promise<number> {
  // A fresh program per call: commander keeps parsed values on it, and tests call main many times.
  const outcome: Outcome = { code: 0, command: 'pg-lifecycle' };
  try {
    await buildProgram(outcome).parseAsync(argv, { from: 'user' });
    return outcome.code;
  } catch (error) {
    return exitCodeOf(error, outcome.command);
  }
}

function exitCodeOf(error: unknown, command: string): number {
  if (error instanceof CommandLineError) {
    const { code, exitCode, message } = error.error;
    // Help for `pg-lifecycle` or `pg-lifecycle subject` without a command went to stderr: a usage error.
    if (HELP_CODES.has(code)) return exitCode === 0 ? 0 : 2;
    printError(`${error.command}: ${message.replace(/^error: /, '')}\nsee ${error.command} --help`);
    return 2;
  }
  if (error instanceof ConfigError || error instanceof UsageError || error instanceof UnknownPolicyError) {
    printError(error.message);
    return 2;
  }
  if (error instanceof DatabaseUnreachableError) {
    printError(`${command}: ${error.message}`);
    return 1;
  }
  const name = (error as Error).name ?? 'Error';
  // describeError: a server error's text without the row values PostgreSQL may quote in it.
  printError(`${name}: ${describeError(error)}`);
  return 1;
}
