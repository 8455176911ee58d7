/**
 * Builds the CDK app in-process: `bin/app.ts` (the `cdk` CLI), the CDK tests and the local runner (which
 * synthesizes the stack and executes the state machine definition) all go through {@link buildApp}.
 */
import { readFileSync } from 'node:fs';
import { App, type Environment, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ConfigError, deploymentIssues } from './config-file.ts';
import type { LifecycleConfig } from './contracts/config.ts';
import { DEFAULT_STACK_NAME } from './contracts/stack-limits.ts';
import { PgLifecycleStack } from './stack.ts';

/** Construct id (and default stack name) of the stack. */
export const STACK_ID = DEFAULT_STACK_NAME;

const CDK_JSON = new URL('../cdk.json', import.meta.url);

/**
 * The context in `cdk.json` (feature flags, `cli-telemetry`). The CLI passes it to the app itself; an
 * in-process app reads it here so tests and the local runner synthesize exactly what `cdk synth` does.
 */
export function readCdkJsonContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(readFileSync(CDK_JSON, 'utf8')) as { context?: Record<string, unknown> };
  return cdkJson.context ?? {};
}

/** Options of {@link buildApp}. */
export interface BuildAppOptions {
  /**
   * Bundle the Lambda handlers with esbuild. Off, the functions get placeholder code (fast tests, local
   * runner); the template is otherwise identical.
   * @default true
   */
  readonly bundling?: boolean;

  /**
   * Run cdk-nag's AWS Solutions checks at synthesis; unacknowledged findings fail the synth.
   * @default true
   */
  readonly nag?: boolean;

  /**
   * Run aws-cdk-lib's built-in CloudFormation validation at synthesis (~2 s). `CDK_VALIDATION=false`
   * also turns it off.
   * @default true
   */
  readonly validation?: boolean;

  /** Extra context, applied over `cdk.json` and the CLI's context. @default - none */
  readonly context?: Readonly<Record<string, unknown>>;

  /** Cloud assembly directory. @default - the CLI's `CDK_OUTDIR`, else a temporary directory */
  readonly outdir?: string;

  /** Stack name. @default 'PgLifecycle' */
  readonly stackName?: string;

  /** Names the config in a ConfigError (the file it came from). @default 'config' */
  readonly configSource?: string;

  /** Target account/region. @default - environment-agnostic */
  readonly env?: Environment;
}

/** The app and its one stack. */
export interface BuiltApp {
  readonly app: App;
  readonly stack: PgLifecycleStack;
}

/**
 * Builds the app (not yet synthesized) for a validated config.
 *
 * @throws ConfigError for a config that cannot be deployed ({@link deploymentIssues}): no database to deploy
 * against (neither `database` nor `sandbox`), or policies that do not fit in one stack
 */
export function buildApp(config: LifecycleConfig, options: BuildAppOptions = {}): BuiltApp {
  const issues = deploymentIssues(config, { stackName: options.stackName });
  if (issues.length > 0) throw new ConfigError(options.configSource ?? 'config', issues);
  const postCliContext: Record<string, unknown> = { ...options.context };
  // An empty list of stacks to bundle turns esbuild off; the CLI's own `-c` cannot set `aws:` keys.
  if (options.bundling === false) postCliContext['aws:cdk:bundling-stacks'] = [];
  const app = new App({
    context: readCdkJsonContext(),
    postCliContext,
    outdir: options.outdir,
    builtinCloudFormationValidation: options.validation ?? true,
  });
  const stack = new PgLifecycleStack(app, STACK_ID, {
    config,
    stackName: options.stackName,
    env: options.env,
  });
  if (options.nag ?? true) Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  return { app, stack };
}
