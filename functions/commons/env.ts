/**
 * The handlers' environment, validated once. In AWS the stack sets DB_SECRET_ARN, DB_SSL and
 * ARCHIVE_BUCKET; locally DATABASE_URL (or libpq's PG* variables) and the bucket from the CLI.
 */
import { z } from 'zod';

const EnvSchema = z.object({
  DB_SECRET_ARN: z.string().min(1).optional(),
  DATABASE_URL: z.string().min(1).optional(),
  /** TLS to the database: verify-full in AWS (RDS CA bundle via NODE_EXTRA_CA_CERTS). */
  DB_SSL: z.enum(['disable', 'require', 'verify-full']).optional(),
  ARCHIVE_BUCKET: z.string().min(3).optional(),
  GLUE_DATABASE: z.string().min(1).optional(),
  /** `{ "<policy>": "<digest>" }` of the deployed policies (Start refuses any other). */
  LIFECYCLE_DEPLOYED_POLICIES: z
    .string()
    .transform((text) => z.record(z.string(), z.string()).parse(JSON.parse(text)))
    .optional(),
  /** '1' when some policy's throttle reads replica lag from CloudWatch (the Chunk function may call it). */
  LIFECYCLE_CLOUDWATCH_LAG: z.enum(['1']).optional(),
  /** Secrets Manager secret holding the anonymize hash key (SecretString): set for anonymize policies. */
  HASH_KEY_SECRET_ARN: z.string().min(1).optional(),
  /** The hash key itself, for local runs only (never set by the stack). */
  PG_LIFECYCLE_HASH_KEY: z.string().min(1).optional(),
  /** Milliseconds kept free before the Lambda timeout: the chunk step returns its cursor before that. */
  LIFECYCLE_SAFETY_MARGIN_MS: z.coerce.number().int().min(0).default(30_000),
});

export type HandlerEnv = z.output<typeof EnvSchema>;

export function readEnv(source: NodeJS.ProcessEnv = process.env): HandlerEnv {
  return EnvSchema.parse(source);
}
