/**
 * Reading `lifecycle.config.json`: parse, validate with the one config schema, and report every problem
 * at once with its location, so a user fixes the file in one pass instead of one error per synth.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import { type LifecycleConfig, LifecycleConfigSchema } from './contracts/config.ts';

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
    super(issues.map((issue) => `${file}: ${issue}`).join('\n'), options);
    this.issues = issues;
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
export function parseConfig(value: unknown, source: string): LifecycleConfig {
  const result = LifecycleConfigSchema.safeParse(value);
  if (!result.success) throw new ConfigError(source, formatZodIssues(result.error), { cause: result.error });
  return result.data;
}

/**
 * Reads and validates a config file.
 *
 * @throws ConfigError listing every problem as `<file>: <path>: <message>`
 */
export function loadConfigFile(path: string): LifecycleConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(path, [`cannot read the file (${(error as Error).message})`], { cause: error });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(path, [`is not valid JSON (${(error as Error).message})`], { cause: error });
  }
  return parseConfig(value, path);
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
