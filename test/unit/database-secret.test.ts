/**
 * The database secret is read without ever quoting it: a SecretString that is not an RDS JSON secret fails
 * with an error naming the secret (and at most the fields at fault), never its text. JSON.parse's own message
 * quotes the first characters (`Unexpected token 'p', "password=h"... is not valid JSON`), and a step's error
 * goes to Step Functions history and CloudWatch. The SDK path runs the real Secrets Manager client against a
 * local HTTP endpoint (AWS_ENDPOINT_URL_SECRETS_MANAGER), no network.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRdsSecret, resolveClientConfig } from '../../functions/commons/database.ts';

const ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf';
const PASSWORD = 'hunter2-Secr3t';

/** Everything of an error a log line, a Step Functions Cause or an inspect could show. */
function everythingOf(error: unknown): string {
  return `${(error as Error).message}\n${(error as Error).stack}\n${inspect(error, { depth: 5 })}\n${JSON.stringify(error)}`;
}

function caught(work: () => unknown): unknown {
  try {
    work();
  } catch (error) {
    return error;
  }
  throw new Error('no error');
}

describe('parseRdsSecret', () => {
  it.each([
    { title: 'key=value text', text: `password=${PASSWORD} host=db`, reason: /not valid JSON/ },
    {
      title: 'truncated JSON',
      text: `{"host":"db","username":"u","password":"${PASSWORD}"`,
      reason: /not valid JSON/,
    },
    { title: 'a JSON string', text: JSON.stringify(PASSWORD), reason: /missing or invalid \(the secret\)/ },
    {
      title: 'a password of the wrong type',
      text: JSON.stringify({ host: 'db', username: 'u', password: [PASSWORD] }),
      reason: /missing or invalid password/,
    },
    {
      title: 'no username',
      text: JSON.stringify({ host: 'db', password: PASSWORD }),
      reason: /missing or invalid username/,
    },
  ])('refuses $title without quoting it', ({ text, reason }) => {
    // Act
    const error = caught(() => parseRdsSecret(ARN, text));
    // Assess
    expect((error as Error).name).toBe('DatabaseSecretError');
    expect((error as Error).message).toContain(
      `secret ${ARN} is not a JSON object with host/username/password`,
    );
    expect((error as Error).message).toMatch(reason);
    expect(everythingOf(error)).not.toContain('hunter2');
    expect(everythingOf(error)).not.toContain('password=h');
  });

  it('reads an RDS secret', () => {
    expect(
      parseRdsSecret(ARN, JSON.stringify({ host: 'db', port: 6432, username: 'u', password: PASSWORD })),
    ).toMatchObject({ host: 'db', port: 6432, username: 'u', password: PASSWORD });
  });
});

describe('resolveClientConfig with DB_SECRET_ARN', () => {
  let server: Server;
  let secretString = '';
  const saved: Record<string, string | undefined> = {};
  const env = {
    AWS_ENDPOINT_URL_SECRETS_MANAGER: '',
    AWS_REGION: 'eu-west-1',
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
  };

  beforeAll(async () => {
    // Answers GetSecretValue the way Secrets Manager does (JSON 1.1 protocol).
    server = createServer((request, response) => {
      request.resume();
      request.on('end', () => {
        response.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
        response.end(JSON.stringify({ ARN, Name: 'prod/db', SecretString: secretString }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    env.AWS_ENDPOINT_URL_SECRETS_MANAGER = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    for (const [name, value] of Object.entries(env)) {
      saved[name] = process.env[name];
      process.env[name] = value;
    }
  });

  afterAll(async () => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('fails on a secret that is not JSON without quoting it', async () => {
    // Prepare
    secretString = `password=${PASSWORD} host=db`;
    // Act
    const error = await resolveClientConfig({ DB_SECRET_ARN: `${ARN}-plain`, DB_SSL: 'disable' }).catch(
      (e: unknown) => e,
    );
    // Assess
    expect((error as Error).name).toBe('DatabaseSecretError');
    expect(everythingOf(error)).not.toContain('hunter2');
  });

  it('connects with the secret fields and the session bounds', async () => {
    // Prepare
    secretString = JSON.stringify({
      host: 'db.internal',
      username: 'app',
      password: PASSWORD,
      dbname: 'orders',
    });
    // Act
    const config = await resolveClientConfig(
      { DB_SECRET_ARN: `${ARN}-json`, DB_SSL: 'disable' },
      { lockTimeoutMs: 1500, statementTimeoutMs: 30_000 },
    );
    // Assess
    expect(config).toMatchObject({
      host: 'db.internal',
      user: 'app',
      password: PASSWORD,
      database: 'orders',
    });
    expect(config.options).toContain('-c lock_timeout=1500 -c statement_timeout=30000');
  });
});
