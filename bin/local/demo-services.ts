/**
 * The demo's PostgreSQL and S3 server: in this process and gone when it ends (`npm start`), or kept running
 * as detached processes for the README's commands (`npm start -- --keep`, `npm run demo:up`).
 */
import { databaseUrl, demoEnvironment, displayPath, exportLines, s3Endpoint } from './demo-state.ts';
import { type KeptServices, upKeptServices } from './kept-services.ts';
import { startLocalPostgres, startLocalS3 } from './services.ts';

export interface DemoServices {
  readonly databaseUrl: string;
  readonly s3Endpoint: string;
  /** Set when the services outlive the demo. */
  readonly kept: KeptServices | undefined;
  /** Stops in-process services; kept ones stay up. */
  release(): Promise<void>;
}

export interface DemoServicesOptions {
  readonly keep: boolean;
  readonly persist: boolean;
  readonly bucket: string;
  readonly hashKey: string;
  readonly say: (text: string) => void;
}

/**
 * Starts the demo's services.
 * @throws DemoAlreadyRunningError when `keep` finds the services of an earlier `demo:up` still running
 */
export async function startDemoServices(options: DemoServicesOptions): Promise<DemoServices> {
  if (options.keep) {
    options.say('Starting embedded PostgreSQL and a local S3 server (kept running after the demo)…');
    const kept = await upKeptServices(options);
    return {
      databaseUrl: databaseUrl(kept.state),
      s3Endpoint: s3Endpoint(kept.state),
      kept,
      release: async () => undefined,
    };
  }
  options.say('Starting embedded PostgreSQL and a local S3 server…');
  const [postgres, s3] = await Promise.allSettled([startLocalPostgres(), startLocalS3()]);
  if (postgres.status === 'rejected' || s3.status === 'rejected') {
    await Promise.allSettled(
      [postgres, s3].map((r) => (r.status === 'fulfilled' ? r.value.stop() : undefined)),
    );
    throw [postgres, s3].find((r): r is PromiseRejectedResult => r.status === 'rejected')?.reason;
  }
  return {
    databaseUrl: postgres.value.url,
    s3Endpoint: s3.value.endpoint,
    kept: undefined,
    release: async () => {
      await Promise.allSettled([postgres.value.stop(), s3.value.stop()]);
    },
  };
}

/** What `--json` says about kept services. */
export function keptServicesJson(kept: KeptServices) {
  const { state, paths } = kept;
  return {
    stateDir: paths.stateDir,
    envFile: paths.envFile,
    resumed: kept.resumed,
    postgres: { pid: state.postgres.pid, port: state.postgres.port, dataDir: state.postgres.dataDir },
    s3: { pid: state.s3.pid, port: state.s3.port, bucket: state.s3.bucket },
    env: demoEnvironment(state),
  };
}

/** Where the kept services are, the `export` lines for the CLI and what to try with them. */
export function describeKeptServices(kept: KeptServices): string {
  const { state, paths } = kept;
  const shown = displayPath;
  const policy = 'counting-results-archive';
  return [
    `Demo services kept running (state in ${shown(paths.stateDir)}):`,
    `  PostgreSQL  127.0.0.1:${state.postgres.port}  pid ${state.postgres.pid}  data ${shown(state.postgres.dataDir)}  log ${shown(state.postgres.log)}`,
    `  S3          127.0.0.1:${state.s3.port}  pid ${state.s3.pid}  bucket ${state.s3.bucket}  log ${shown(state.s3.log)}`,
    '',
    `Point the CLI at them (these lines are also in ${shown(paths.envFile)}: source ${shown(paths.envFile)}):`,
    '',
    ...exportLines(demoEnvironment(state)),
    '',
    'Then, for example:',
    '  npx pg-lifecycle plan',
    `  npx pg-lifecycle run --policy ${policy}`,
    '  npx pg-lifecycle status',
    `  npx pg-lifecycle verify --policy ${policy}`,
    '  npx pg-lifecycle backups list',
    `  duckdb < ${shown(paths.duckdbFile)}     # DuckDB over the archive in the local S3 server (httpfs)`,
    '',
    `Stop them: npm run demo:down   (npm run demo:down -- --persist keeps the data for npm run demo:up -- --persist)`,
  ].join('\n');
}
