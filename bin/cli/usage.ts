/** Help text that is not one option's: what `pg-lifecycle --help` adds after the command list. */

export const ENVIRONMENT_HELP = `Environment
  DATABASE_URL or PG*     The database of run, plan, status, report, verify, unlock, migrate, restore,
                          drill, restore-archive and subject (sslmode in the URL is honoured)
  AWS_*                   S3 and Step Functions (AWS_ENDPOINT_URL_S3 for a local S3 server)
  PG_LIFECYCLE_BUCKET     Bucket for local runs when --bucket is not given
  PG_LIFECYCLE_STATE_MACHINE_PREFIX
                          State machines of start and status: the stack output StateMachineArnPrefix
                          (arn:…:stateMachine:<stack>-; each policy has its own <stack>-<policy>), or
                          --state-machine-arn with one policy's ARN
  PG_LIFECYCLE_HASH_KEY   Hash key of subject requests and anonymize policies (locally)`;

export const EXIT_CODES_HELP = `Exit codes
  0  success
  1  a failure: a run failed, a plan shows a real run would refuse, unlock refused, verify found a
     problem, a restore or a drill failed, report found something overdue, the database could not be
     reached
  2  invalid usage, config or input: an unknown command or option, an option of another command, an
     unknown policy, run or backup, a database without a ledger, a missing bucket, a restore target
     that is not as the mode needs
  3  restore-archive is waiting for S3 to restore objects from Glacier Flexible Retrieval / Deep
     Archive (run it again later)`;

/** `Example:` lines under a command's help, each indented like commander's own sections. */
export function examples(...lines: string[]): string {
  return `\nExample${lines.length > 1 ? 's' : ''}:\n${lines.map((line) => `  ${line}`).join('\n')}`;
}
