/**
 * The relocatable DDL of a backup: schema.sql and post-data.sql generated with every schema the backup
 * recreates objects in mapped onto ONE placeholder schema, so that `restore --into-schema S` and restore drills
 * can put the whole backup next to the original by replacing the placeholder with S — at restore time, when
 * the definition read from pg_catalog is long gone and only the stored text is left.
 *
 * Why text replacement is safe here, where schema-sql.ts otherwise builds every name from the catalog's parts:
 * the placeholder is a name no one uses (`"pg-lifecycle restore target"`: quote_ident always quotes it, so
 * PostgreSQL never prints it bare), the text is generated only when the placeholder's quoted form occurs
 * nowhere in the identity-mapped output (a comment, default or CHECK that mentions it makes the backup
 * non-relocatable instead), and the replacement reads the SQL lexically (sql-text.ts): a quoted identifier
 * equal to the placeholder becomes the target's quoted name, and inside a string literal (setval's
 * `'"…"."seq"'`) the target is quoted as the literal needs.
 *
 * When the tables cannot share one schema (two tables, types or sequences of one name in two schemas),
 * there is no relocatable DDL: the reason says which names collide.
 */
import { quoteIdent } from '../../../lib/contracts/identifiers.ts';
import { protectedSchemaReason } from '../../../lib/contracts/protected-schemas.ts';
import type { SchemaDefinition } from './schema-definition.ts';
import { generateSchemaSql, type SchemaSql } from './schema-sql.ts';
import { type SqlSegment, sqlSegments } from './sql-text.ts';

/** The schema name the relocatable DDL places everything in, replaced by the target at restore time. */
export const RELOCATION_PLACEHOLDER = 'pg-lifecycle restore target';

export interface RelocatableSchemaSql extends SchemaSql {
  /** The placeholder schema name (unquoted) the text uses: stored in the manifest's `relocatable`. */
  readonly placeholder: string;
}

/** The relocatable pre-data and post-data of `definition`, or why the backup cannot have them. */
export function relocatableSchemaSql(
  definition: SchemaDefinition,
  placeholder: string = RELOCATION_PLACEHOLDER,
): RelocatableSchemaSql | { readonly unavailable: string } {
  const quoted = quoteIdent(placeholder);
  const identity = generateSchemaSql(definition);
  if (identity.preData.includes(quoted) || identity.postData.includes(quoted)) {
    return { unavailable: `the backup's own DDL already contains ${quoted}, the relocation placeholder` };
  }
  const mapping = new Map(definition.searchPath.map((schema) => [schema, placeholder]));
  let sql: SchemaSql;
  try {
    sql = generateSchemaSql(definition, mapping, { omitOutsideForeignKeys: true });
  } catch (error) {
    // checkMapping: two objects of one name in two schemas cannot both go into one schema.
    return { unavailable: `the tables cannot be restored into one schema: ${(error as Error).message}` };
  }
  return { ...sql, placeholder };
}

/** The manifest's notIncluded lines about the relocatable DDL: why there is none, or what it leaves out. */
export function relocationNotIncluded(
  relocatable: RelocatableSchemaSql | { readonly unavailable: string },
): string[] {
  if ('unavailable' in relocatable)
    return [`restore --into-schema and drills: not available for this backup (${relocatable.unavailable})`];
  return relocatable.omittedForeignKeys.map(
    (key) =>
      `restore --into-schema and drills: foreign key ${key} (a table outside the backup) is not recreated, ` +
      'so a restore next to the original never locks or reads the live table',
  );
}

/** Why `schema` cannot be a restore target, or undefined. */
export function targetSchemaProblem(schema: string): string | undefined {
  if (schema === '') return 'must not be empty';
  if (schema.includes('\0')) return 'must not contain NUL';
  // PostgreSQL would silently cut a longer name, and then every catalog lookup by the full name would miss.
  if (Buffer.byteLength(schema) > 63) return 'is longer than 63 bytes';
  return protectedSchemaReason(schema);
}

/**
 * `text` (relocatable DDL) with the placeholder schema replaced by `targetSchema`.
 * @throws RangeError for a target schema that cannot be one
 */
export function relocateSql(text: string, placeholder: string, targetSchema: string): string {
  const problem = targetSchemaProblem(targetSchema);
  if (problem) throw new RangeError(`target schema ${quoteIdent(targetSchema)} ${problem}`);
  const from = quoteIdent(placeholder);
  const to = quoteIdent(targetSchema);
  return sqlSegments(text)
    .map((segment) => relocateSegment(segment, from, to))
    .join('');
}

function relocateSegment(segment: SqlSegment, from: string, to: string): string {
  switch (segment.kind) {
    case 'identifier':
      return segment.text === from ? to : segment.text;
    case 'literal': {
      if (!segment.text.includes(from)) return segment.text;
      // Inside a literal the target's quotes must be escaped as the literal reads them.
      let inLiteral = to.replaceAll("'", "''");
      if (segment.escapeString) inLiteral = inLiteral.replaceAll('\\', '\\\\');
      return segment.text.replaceAll(from, inLiteral);
    }
    case 'code':
    case 'comment':
      return segment.text;
  }
}
