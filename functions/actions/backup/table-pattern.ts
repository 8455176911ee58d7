/**
 * Which tables a backup takes: `schema.*` (every table of the schema) or an exact `table` / `schema.table`,
 * parts quoted as elsewhere (`"Sales"."Order Lines"`, `"Sales".*`). Parsed the way PostgreSQL reads names
 * (unquoted parts fold to lower case), so a pattern matches what the catalog holds.
 */
import { parseQualifiedName } from '../../../lib/contracts/identifiers.ts';
import { protectedSchemaReason } from '../../../lib/contracts/protected-schemas.ts';

/** A parsed pattern: a whole schema, or one table (schema undefined: an unqualified name, read as public). */
export type TablePattern =
  | { readonly kind: 'schema'; readonly schema: string }
  | { readonly kind: 'table'; readonly schema: string | undefined; readonly table: string };

const catalogName = (part: { name: string; quoted: boolean }) =>
  part.quoted ? part.name : part.name.toLowerCase();

/** @throws Error saying why the text is not a pattern, or why no backup may read what it names */
export function parseTablePattern(text: string): TablePattern {
  let pattern: TablePattern;
  if (text.endsWith('.*')) {
    const parts = parseQualifiedName(text.slice(0, -2));
    if (parts.length !== 1 || !parts[0]) throw new Error('must be "schema.*" with a single schema name');
    pattern = { kind: 'schema', schema: catalogName(parts[0]) };
  } else {
    const parts = parseQualifiedName(text).map(catalogName);
    if (parts.length === 1) pattern = { kind: 'table', schema: undefined, table: parts[0] as string };
    else if (parts.length === 2) pattern = { kind: 'table', schema: parts[0], table: parts[1] as string };
    else throw new Error('must be "table", "schema.table" or "schema.*"');
  }
  const reason = protectedSchemaReason(pattern.schema ?? 'public');
  if (reason) throw new Error(`no backup reads it (${reason})`);
  return pattern;
}

/** Whether a catalog table (exact names) is named by the pattern; an unqualified pattern means `public`. */
export function matchesTablePattern(
  pattern: TablePattern,
  table: { schema: string; table: string },
): boolean {
  if (pattern.kind === 'schema') return pattern.schema === table.schema;
  return (pattern.schema ?? 'public') === table.schema && pattern.table === table.table;
}

/** Two patterns that name the same tables (a duplicate in the config). */
export function samePattern(a: TablePattern, b: TablePattern): boolean {
  if (a.kind === 'schema' || b.kind === 'schema') return a.kind === b.kind && a.schema === b.schema;
  return (a.schema ?? 'public') === (b.schema ?? 'public') && a.table === b.table;
}

/** Whether excluding `exclude` leaves nothing of what `table` names. */
export function excludesAllOf(exclude: TablePattern, table: TablePattern): boolean {
  return (
    samePattern(exclude, table) ||
    (exclude.kind === 'schema' && (table.schema ?? 'public') === exclude.schema)
  );
}

/** One problem of a policy's table patterns, at a path below the policy (`['backup', 'tables', 1]`). */
export interface PatternProblem {
  readonly path: ReadonlyArray<string | number>;
  readonly message: string;
}

/**
 * Problems of a `tables` / `exclude` pair among themselves (backup, maintain: `section` names the policy's
 * field): a pattern listed twice, or exclusions that leave nothing. Patterns that do not parse are their own
 * schema's problem and are passed over here.
 */
export function tablePatternProblems(
  section: string,
  options: { readonly tables: readonly string[]; readonly exclude: readonly string[] },
): PatternProblem[] {
  const parse = (list: readonly string[]) =>
    list.map((text) => {
      try {
        return parseTablePattern(text);
      } catch {
        return undefined;
      }
    });
  const tables = parse(options.tables);
  const exclude = parse(options.exclude);
  const problems: PatternProblem[] = [];
  const duplicates = (list: Array<TablePattern | undefined>, key: 'tables' | 'exclude') => {
    list.forEach((pattern, index) => {
      if (pattern && list.slice(0, index).some((other) => other && samePattern(other, pattern)))
        problems.push({ path: [section, key, index], message: `${options[key][index]} is listed twice` });
    });
  };
  duplicates(tables, 'tables');
  duplicates(exclude, 'exclude');
  const leftOut = (table: TablePattern | undefined) =>
    table !== undefined && exclude.some((e) => e !== undefined && excludesAllOf(e, table));
  if (tables.length > 0 && tables.every(leftOut)) {
    problems.push({ path: [section, 'exclude'], message: 'excludes every table that tables names' });
  }
  return problems;
}
