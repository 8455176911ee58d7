/**
 * Vitest global setup: one PostgreSQL server and one S3 server for the whole run. Test files isolate
 * themselves with their own database (`database.ts`) and bucket (`s3.ts`).
 *
 * `DATABASE_URL` (a superuser on PostgreSQL 13+) and `AWS_ENDPOINT_URL_S3` point the tests at servers of
 * your own instead.
 */
import type { TestProject } from 'vitest/node';
import { startLocalPostgres, startLocalS3 } from '../../bin/local/services.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Superuser URL of the server test databases are created on. */
    adminDatabaseUrl: string;
    /** S3 endpoint for path-style clients. */
    s3Endpoint: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const stops: Array<() => Promise<void>> = [];
  const teardown = async () => {
    const results = await Promise.allSettled(stops.map((stop) => stop()));
    const failure = results.find((result) => result.status === 'rejected');
    if (failure) throw failure.reason;
  };
  // allSettled, not all: when one server fails to start, the other must still be stopped.
  const [database, s3] = await Promise.allSettled([
    fromEnvironment('DATABASE_URL') ??
      startLocalPostgres().then((postgres) => {
        stops.push(postgres.stop);
        return postgres.url;
      }),
    fromEnvironment('AWS_ENDPOINT_URL_S3') ??
      startLocalS3().then((server) => {
        stops.push(server.stop);
        return server.endpoint;
      }),
  ]);
  if (database.status === 'fulfilled' && s3.status === 'fulfilled') {
    project.provide('adminDatabaseUrl', database.value);
    project.provide('s3Endpoint', s3.value);
    return teardown;
  }
  await teardown().catch(() => undefined);
  throw [database, s3].find((result): result is PromiseRejectedResult => result.status === 'rejected')
    ?.reason;
}

function fromEnvironment(name: string): string | undefined {
  const value = process.env[name];
  return value === undefined || value === '' ? undefined : value;
}
