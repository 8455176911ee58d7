/**
 * Where the anonymize hash key (the HMAC key of `hash` and `email` pseudonyms) comes from: a Secrets Manager
 * secret in AWS (`HASH_KEY_SECRET_ARN`, its SecretString), `PG_LIFECYCLE_HASH_KEY` locally. The key is read
 * only when a run needs it and never logged; undefined when neither is set (the run then refuses a policy
 * that hashes, before anything changes).
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { HashKeyError } from '../core/errors.ts';
import { AWS_CLIENT_TIMEOUTS } from './aws-clients.ts';
import type { HandlerEnv } from './env.ts';

export async function readHashKey(
  env: Pick<HandlerEnv, 'HASH_KEY_SECRET_ARN' | 'PG_LIFECYCLE_HASH_KEY'>,
): Promise<string | undefined> {
  if (env.HASH_KEY_SECRET_ARN) return readSecretString(env.HASH_KEY_SECRET_ARN);
  return env.PG_LIFECYCLE_HASH_KEY;
}

async function readSecretString(arn: string): Promise<string> {
  const client = new SecretsManagerClient({ ...AWS_CLIENT_TIMEOUTS });
  try {
    const result = await client.send(new GetSecretValueCommand({ SecretId: arn }));
    if (!result.SecretString) throw new HashKeyError(`hash key secret ${arn} has no SecretString`);
    return result.SecretString;
  } finally {
    client.destroy();
  }
}
