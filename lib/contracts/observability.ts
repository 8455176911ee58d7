/**
 * Where the deployed stack's logs go and what they may contain: the Lambda log groups and the state
 * machines' execution log group. Pure config contract (zod), shared by the CDK app and `validate`.
 */
import { z } from 'zod';

/** The retention periods CloudWatch Logs accepts (days); any other number fails at deploy time. */
export const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
] as const;

/**
 * Two years: the logs are the audit trail of what every run deleted and archived (next to the ledger in
 * the database), and an audit looks back over at least the last full year.
 */
export const DEFAULT_LOG_RETENTION_DAYS = 731;

/**
 * A customer-managed KMS key, by ARN (CloudWatch Logs takes a key ARN, not an alias). The key id is a UUID,
 * or `mrk-` and 32 hex digits for a multi-Region key.
 */
export const KmsKeyArnSchema = z
  .string()
  .regex(
    /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$/,
    'must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<key id or mrk-…>)',
  );

export const ObservabilitySchema = z
  .object({
    /** Days the Lambda and state machine logs are kept; one of CloudWatch's values (365, 400, 731, …). */
    logRetentionDays: z
      .int()
      .refine((days) => (LOG_RETENTION_DAYS as readonly number[]).includes(days), {
        message: `must be one of CloudWatch Logs' retention periods: ${LOG_RETENTION_DAYS.join(', ')}`,
      })
      .default(DEFAULT_LOG_RETENTION_DAYS),
    /**
     * Encrypt every log group with this customer-managed key. Its key policy must let
     * `logs.<region>.amazonaws.com` use it (kms:Encrypt*, Decrypt*, ReEncrypt*, GenerateDataKey*, Describe*).
     */
    logKmsKeyArn: KmsKeyArnSchema.optional(),
    /**
     * Include execution data (state input and output, error causes) in the state machine logs. Off by
     * default: run states carry cursors (time and primary-key values of rows) and error causes may quote
     * database messages; the ledger (`lifecycle.runs`) and the execution history hold them already.
     */
    logExecutionData: z.boolean().default(false),
  })
  .strict();

export type Observability = z.output<typeof ObservabilitySchema>;
