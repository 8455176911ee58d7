/**
 * A backup's schema.sql (pre-data: extensions, schemas, types, sequences, tables, partitions) and post-data.sql
 * (keys, exclusion and foreign key constraints, indexes, sequence positions, comments) from its
 * definition (schema-definition.ts). Pure. The text is plain SQL that `psql -v ON_ERROR_STOP=1 -f` runs:
 * statements separated by `;`, no psql meta-commands, no dollar quoting.
 *
 * The schema mapping (original schema → target schema) places everything the backup recreates — tables,
 * their owned and identity sequences and the sequences their defaults use, enum, domain, composite and
 * range types — in the target schema; every qualified name of those is built here from the catalog's parts,
 * and a foreign key between backed-up tables references the target. Anything else keeps its own schema:
 * extensions are created where they were (type-sql.ts).
 *
 * Expressions are PostgreSQL's text, printed with search_path = the backup's schemas (`searchPath`), so a
 * reference into those schemas is unqualified. Both files set search_path to the targets of those schemas
 * first and then the mapped originals: a name the backup recreates is found in its target (created before
 * anything uses it), any other unqualified name in the original schema as before. What that cannot remap:
 * - a function, operator, collation or table-typed value in a mapped schema that the backup does not
 *   recreate (a DEFAULT or CHECK calling `app.next_code()`) still refers to the original; restored into
 *   another database without it, it is missing — the manifest's notIncluded lists each such object
 *   (table-dependencies.ts);
 * - a reference the original printed qualified (its schema was not one of the backup's) stays qualified;
 * - a target schema that already holds objects named like those of a mapped schema may capture
 *   unqualified references: restore into a new or empty schema;
 * - names PostgreSQL generated (constraint and index names on partitions, created here by the parent's
 *   constraint or index) may differ from the original's when those were named by hand.
 */
import { quoteIdent, quoteQualified } from '../../../lib/contracts/identifiers.ts';
import type {
  ColumnDefinition,
  IndexDefinition,
  IndexKey,
  QualifiedName,
  SchemaDefinition,
  TableDefinition,
} from './schema-definition.ts';
import {
  checkMapping,
  integer,
  Names,
  quoteLiteral,
  type SchemaMapping,
  sequenceOptions,
  unplaced,
} from './schema-names.ts';
import { extensionStatements, typeStatements } from './type-sql.ts';

export { checkMapping, quoteLiteral, type SchemaMapping };

export interface SchemaSql {
  readonly preData: string;
  readonly postData: string;
  /** Foreign keys left out of postData (`omitOutsideForeignKeys`), one `<table> <constraint> → <table>` each. */
  readonly omittedForeignKeys: readonly string[];
}

export interface SchemaSqlOptions {
  /**
   * Leave out foreign keys that reference a table outside the backup. The relocatable DDL does: restored next
   * to the original (drills, --into-schema), such a key would reference the live table, and adding it takes
   * a SHARE ROW EXCLUSIVE lock on that table and reads it to validate the restored rows — a drill must never
   * block or load production tables.
   */
  readonly omitOutsideForeignKeys?: boolean;
}

/** What every file sets first: how its constants and expressions are read (as table-definition printed them). */
const SESSION_SETTINGS = [
  'SET statement_timeout = 0;',
  'SET lock_timeout = 0;',
  "SET client_encoding = 'UTF8';",
  'SET standard_conforming_strings = on;',
  'SET check_function_bodies = false;',
  'SET client_min_messages = warning;',
  "SET DateStyle = 'ISO, YMD';",
  'SET IntervalStyle = postgres;',
  "SET TimeZone = 'UTC';",
  'SET extra_float_digits = 3;',
];

/** `WITH (name='value', …)` from pg_class.reloptions (`name=value`). */
function storageOptions(options: readonly string[]): string {
  if (options.length === 0) return '';
  const items = options.map((option) => {
    const at = option.indexOf('=');
    const name = at === -1 ? option : option.slice(0, at);
    const value = at === -1 ? 'true' : option.slice(at + 1);
    const key = /^[a-z_][a-z0-9_.]*$/.test(name) ? name : quoteIdent(name);
    return `${key}=${quoteLiteral(value)}`;
  });
  return ` WITH (${items.join(', ')})`;
}

function columnSql(names: Names, column: ColumnDefinition): string {
  const parts = [quoteIdent(column.name), names.type(column.type)];
  if (column.collation) parts.push(`COLLATE ${unplaced(column.collation)}`);
  if (column.generated) {
    parts.push(
      `GENERATED ALWAYS AS (${column.generated.expression})${column.generated.stored ? ' STORED' : ''}`,
    );
  } else if (column.identity) {
    const identity = column.identity;
    parts.push(
      `GENERATED ${identity.generation === 'always' ? 'ALWAYS' : 'BY DEFAULT'} AS IDENTITY ` +
        `(SEQUENCE NAME ${names.placed(identity.sequence)} ${sequenceOptions(identity.options)})`,
    );
  } else if (column.default !== undefined) {
    parts.push(`DEFAULT ${column.default}`);
  }
  if (column.notNull) parts.push('NOT NULL');
  return parts.join(' ');
}

/** ONLY keeps a change to this table; a partitioned table refuses it for constraints its partitions need. */
function alterTable(names: Names, table: TableDefinition): string {
  return `ALTER TABLE ${table.partitionBy ? '' : 'ONLY '}${names.placed(table)}`;
}

function createTable(names: Names, table: TableDefinition, parent: TableDefinition | undefined): string[] {
  const name = names.placed(table);
  const partitionBy = table.partitionBy ? ` PARTITION BY ${table.partitionBy}` : '';
  const validChecks = table.checks.filter((c) => c.validated);
  if (table.partitionOf && parent) {
    // A partition takes its columns, defaults, NOT NULLs, generated columns and CHECKs from its parent;
    // what it declares beyond those is added to it.
    const statements = [
      `CREATE ${table.unlogged ? 'UNLOGGED ' : ''}TABLE ${name} PARTITION OF ${names.placed(parent)} ` +
        `${table.partitionOf.bound}${partitionBy}${storageOptions(table.options)};`,
    ];
    const parentColumns = new Map(parent.columns.map((c) => [c.name, c]));
    for (const column of table.columns) {
      const inherited = parentColumns.get(column.name);
      const alter = `${alterTable(names, table)} ALTER COLUMN ${quoteIdent(column.name)}`;
      if (column.default !== undefined && column.default !== inherited?.default) {
        statements.push(`${alter} SET DEFAULT ${column.default};`);
      } else if (column.default === undefined && inherited?.default !== undefined && !column.generated) {
        statements.push(`${alter} DROP DEFAULT;`);
      }
      if (column.notNull && !inherited?.notNull && !column.identity)
        statements.push(`${alter} SET NOT NULL;`);
    }
    for (const check of validChecks) {
      statements.push(
        `${alterTable(names, table)} ADD CONSTRAINT ${quoteIdent(check.name)} ${check.definition};`,
      );
    }
    return statements;
  }
  const lines = [
    ...table.columns.map((c) => columnSql(names, c)),
    ...validChecks.map((c) => `CONSTRAINT ${quoteIdent(c.name)} ${c.definition}`),
  ];
  const body = lines.length > 0 ? `\n    ${lines.join(',\n    ')}\n` : '';
  return [
    `CREATE ${table.unlogged ? 'UNLOGGED ' : ''}TABLE ${name} (${body})${partitionBy}${storageOptions(table.options)};`,
  ];
}

function preData(names: Names): string[] {
  const { definition } = names;
  const out: string[] = [];
  // First: the types, operator classes and functions they hold are what the rest is built from.
  const extensions = extensionStatements(definition.extensions);
  if (extensions.length > 0) out.push(...extensions, '');
  const targets = [...new Set(definition.searchPath.map((s) => names.schema(s)))];
  for (const schema of targets) out.push(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)};`);
  // After CREATE SCHEMA: the path then names schemas that exist.
  out.push(`SET search_path = ${names.searchPath()};`, '');
  out.push(...typeStatements(names, definition.types));
  // Before the tables: their defaults name them (nextval('…'::regclass) is resolved when the table is made).
  for (const sequence of definition.sequences) {
    out.push(
      `CREATE SEQUENCE ${names.placed(sequence)} AS ${sequence.options.dataType} ${sequenceOptions(sequence.options)};`,
    );
  }
  out.push('');
  const byName = new Map(definition.tables.map((t) => [`${t.schema}\0${t.name}`, t]));
  for (const table of definition.tables) {
    const parent = table.partitionOf
      ? byName.get(`${table.partitionOf.parent.schema}\0${table.partitionOf.parent.name}`)
      : undefined;
    out.push(...createTable(names, table, parent), '');
  }
  for (const sequence of definition.sequences) {
    if (!sequence.ownedBy) continue;
    const owner = `${names.placed(sequence.ownedBy.table)}.${quoteIdent(sequence.ownedBy.column)}`;
    out.push(`ALTER SEQUENCE ${names.placed(sequence)} OWNED BY ${owner};`);
  }
  return out;
}

function indexKeySql(key: IndexKey): string {
  const parts = ['column' in key ? quoteIdent(key.column) : `(${key.expression})`];
  if (key.collation) parts.push(`COLLATE ${unplaced(key.collation)}`);
  if (key.opclass) parts.push(unplaced(key.opclass));
  if (key.descending) parts.push('DESC');
  if (key.descending && !key.nullsFirst) parts.push('NULLS LAST');
  if (!key.descending && key.nullsFirst) parts.push('NULLS FIRST');
  return parts.join(' ');
}

/** Without ONLY: on a partitioned table it also creates (or attaches) the partitions' indexes. */
function createIndex(names: Names, table: TableDefinition, index: IndexDefinition): string {
  const include = index.include.length > 0 ? ` INCLUDE (${index.include.map(quoteIdent).join(', ')})` : '';
  const nulls = index.nullsNotDistinct ? ' NULLS NOT DISTINCT' : '';
  const where = index.predicate !== undefined ? ` WHERE ${index.predicate}` : '';
  return (
    `CREATE ${index.unique ? 'UNIQUE ' : ''}INDEX ${quoteIdent(index.name)} ON ${names.placed(table)} ` +
    `USING ${quoteIdent(index.method)} (${index.keys.map(indexKeySql).join(', ')})${include}${nulls}` +
    `${storageOptions(index.options)}${where};`
  );
}

function postData(names: Names, options: SchemaSqlOptions, omitted: string[]): string[] {
  const { definition } = names;
  const out: string[] = [`SET search_path = ${names.searchPath()};`, ''];
  for (const table of definition.tables) {
    for (const key of table.keys) {
      out.push(`${alterTable(names, table)} ADD CONSTRAINT ${quoteIdent(key.name)} ${key.definition};`);
    }
    // NOT VALID: rows that broke it when the backup was taken are in the data.
    for (const check of table.checks.filter((c) => !c.validated)) {
      out.push(`${alterTable(names, table)} ADD CONSTRAINT ${quoteIdent(check.name)} ${check.definition};`);
    }
  }
  for (const table of definition.tables) {
    for (const index of table.indexes) out.push(createIndex(names, table, index));
  }
  // After every key: a foreign key needs the referenced table's unique constraint.
  for (const table of definition.tables) {
    for (const fk of table.foreignKeys) {
      if (options.omitOutsideForeignKeys && !names.backsUp(fk.references)) {
        omitted.push(
          `${quoteQualified(table.schema, table.name)} ${quoteIdent(fk.name)} → ${quoteQualified(fk.references.schema, fk.references.name)}`,
        );
        continue;
      }
      const columns = (list: readonly string[]) => list.map(quoteIdent).join(', ');
      const setColumns = fk.onDeleteColumns.length > 0 ? ` (${columns(fk.onDeleteColumns)})` : '';
      const deferrable = fk.deferrable
        ? ` DEFERRABLE${fk.initiallyDeferred ? ' INITIALLY DEFERRED' : ''}`
        : '';
      out.push(
        `${alterTable(names, table)} ADD CONSTRAINT ${quoteIdent(fk.name)} FOREIGN KEY (${columns(fk.columns)}) ` +
          `REFERENCES ${names.referenced(fk.references)} (${columns(fk.referencedColumns)})` +
          `${fk.matchFull ? ' MATCH FULL' : ''} ON UPDATE ${fk.onUpdate.toUpperCase()} ` +
          `ON DELETE ${fk.onDelete.toUpperCase()}${setColumns}${deferrable}${fk.validated ? '' : ' NOT VALID'};`,
      );
    }
  }
  out.push('');
  const setval = (sequence: QualifiedName, state: { lastValue: string; isCalled: boolean }) =>
    `SELECT pg_catalog.setval(${quoteLiteral(names.placed(sequence))}, ${integer(state.lastValue)}, ${state.isCalled});`;
  for (const sequence of definition.sequences) out.push(setval(sequence, sequence.state));
  for (const table of definition.tables) {
    for (const column of table.columns) {
      if (column.identity) out.push(setval(column.identity.sequence, column.identity.state));
    }
  }
  out.push('');
  for (const table of definition.tables) {
    if (table.comment !== undefined) {
      out.push(`COMMENT ON TABLE ${names.placed(table)} IS ${quoteLiteral(table.comment)};`);
    }
    for (const column of table.columns) {
      if (column.comment === undefined) continue;
      out.push(
        `COMMENT ON COLUMN ${names.placed(table)}.${quoteIdent(column.name)} IS ${quoteLiteral(column.comment)};`,
      );
    }
  }
  return out;
}

function file(title: string, statements: string[]): string {
  return [`-- ${title}`, ...SESSION_SETTINGS, '', ...statements, ''].join('\n');
}

/** schema.sql and post-data.sql for `definition`, with backed-up objects placed by `mapping`. */
export function generateSchemaSql(
  definition: SchemaDefinition,
  mapping: SchemaMapping = new Map(),
  options: SchemaSqlOptions = {},
): SchemaSql {
  checkMapping(definition, mapping);
  const names = new Names(definition, mapping);
  const omittedForeignKeys: string[] = [];
  return {
    preData: file(
      'pg-lifecycle backup: pre-data (extensions, schemas, types, sequences, tables)',
      preData(names),
    ),
    postData: file(
      'pg-lifecycle backup: post-data (constraints, indexes, sequence positions, comments)',
      postData(names, options, omittedForeignKeys),
    ),
    omittedForeignKeys,
  };
}
