/**
 * Reading `lifecycle.config.json`: decode, parse, validate with the one config schema, and report every
 * problem at once with its location, so a user fixes the file in one pass instead of one error per synth.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import { type LifecycleConfig, LifecycleConfigSchema } from './contracts/config.ts';
import { stackLimitProblems } from './contracts/stack-limits.ts';
import { JsonSyntaxError, parseJsonSource, visibleText } from './json-source.ts';

/** The config file cannot be read, is not JSON, or does not match the schema. */
export class ConfigError extends Error {
  public override readonly name = 'ConfigError';

  /** One line per problem, `<path>: <message>`, without the file name. */
  public readonly issues: readonly string[];

  public constructor(
    public readonly file: string,
    issues: readonly string[],
    options?: ErrorOptions,
  ) {
    // Issues quote the user's values: a zero-width space or a byte order mark in them must show.
    const visible = issues.map(visibleText);
    super(visible.map((issue) => `${file}: ${issue}`).join('\n'), options);
    this.issues = visible;
  }
}

/** `['policies', 0, 'retention']` → `policies[0].retention`; the root is `(root)`. */
export function formatIssuePath(path: readonly PropertyKey[]): string {
  let text = '';
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`;
    else text += text === '' ? String(segment) : `.${String(segment)}`;
  }
  return text === '' ? '(root)' : text;
}

/** Every issue of a zod error as `<path>: <message>`, in schema order. */
export function formatZodIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => `${formatIssuePath(issue.path)}: ${issue.message}`);
}

/** Validates an already parsed config object; `source` names it in error messages. */
export function parseConfig(
  value: unknown,
  source: string,
  earlierIssues: readonly string[] = [],
): LifecycleConfig {
  const result = LifecycleConfigSchema.safeParse(value);
  const issues = [...earlierIssues, ...(result.success ? [] : formatZodIssues(result.error))];
  if (!result.success || issues.length > 0) {
    throw new ConfigError(source, issues, { cause: result.success ? undefined : result.error });
  }
  return result.data;
}

/**
 * The file's bytes as text. A UTF-8 byte order mark (Windows editors write one) is dropped, as JSON allows
 * a parser to; UTF-16 and bytes that are not UTF-8 are refused with where they are, since decoding them
 * loosely would put replacement characters into table names or filters.
 */
function decodeConfigText(bytes: Uint8Array): string | { problem: string } {
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    return { problem: 'is UTF-16 text; save it as UTF-8' };
  }
  try {
    // ignoreBOM false (the default): a leading UTF-8 byte order mark is consumed, not returned.
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const loose = new TextDecoder('utf-8').decode(bytes);
    const at = loose.indexOf('\uFFFD');
    const before = loose.slice(0, at);
    const line = before.split('\n').length;
    const column = at - before.lastIndexOf('\n');
    return { problem: `is not UTF-8 text (line ${line}, column ${column}); save it as UTF-8` };
  }
}

/**
 * What a deployment (`cdk synth`/`deploy`) needs beyond the schema: a database to reach, and policies that
 * fit in one stack named `stackName` (resources, construct ids, state machine names). Local runs (`run`,
 * `plan`) take DATABASE_URL and deploy nothing, so the schema itself accepts such a config and `validate`
 * only warns.
 */
export function deploymentIssues(config: LifecycleConfig, options: { stackName?: string } = {}): string[] {
  const issues =
    config.database || config.sandbox
      ? []
      : [
          '(root): config needs `database` (an existing PostgreSQL) or `sandbox: true` (a throw-away RDS) to deploy; local runs (run, plan) use DATABASE_URL instead',
        ];
  return [...issues, ...stackLimitProblems(config, options.stackName)];
}

/**
 * Reads and validates a config file.
 *
 * @throws ConfigError listing every problem as `<file>: <path>: <message>`
 */
export function loadConfigFile(path: string): LifecycleConfig {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new ConfigError(path, [`cannot read the file (${(error as Error).message})`], { cause: error });
  }
  const text = decodeConfigText(bytes);
  if (typeof text !== 'string') throw new ConfigError(path, [text.problem]);
  let parsed: ReturnType<typeof parseJsonSource>;
  try {
    parsed = parseJsonSource(text);
  } catch (error) {
    if (!(error instanceof JsonSyntaxError)) throw error;
    throw new ConfigError(path, [`is not valid JSON: ${error.message}`], { cause: error });
  }
  // JSON.parse keeps the last of repeated keys: the first value, the one a reader sees, would be ignored.
  const duplicates = parsed.duplicates.map(
    (duplicate) => `${formatIssuePath(duplicate.path)}: duplicate key ${JSON.stringify(duplicate.key)}`,
  );
  return parseConfig(parsed.value, path, duplicates);
}

/**
 * The JSON Schema of the config file as users write it (defaults make fields optional), for editor
 * completion via `"$schema": "./lifecycle.schema.json"`. Refinements (durations, cron, filters) cannot be
 * expressed in JSON Schema; they are checked by {@link loadConfigFile}.
 */
export function buildConfigJsonSchema(): Record<string, unknown> {
  // superRefine checks are simply omitted by toJSONSchema; no `unrepresentable: 'any'` needed, so a future
  // field type JSON Schema cannot express fails here loudly instead of silently accepting anything.
  const schema = z.toJSONSchema(LifecycleConfigSchema, { io: 'input' });
  return { ...schema, title: 'pg-lifecycle configuration' };
}

/** Writes {@link buildConfigJsonSchema} to `path` (pretty-printed, trailing newline). */
export function writeConfigJsonSchema(path: string): void {
  writeFileSync(path, `${JSON.stringify(buildConfigJsonSchema(), null, 2)}\n`);
}
