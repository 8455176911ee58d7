/**
 * The pre-data statements for what the tables are built from: the extensions they use (first, where they
 * were: an extension is never moved by the schema mapping, so references printed into its schema hold) and
 * the enum, domain, composite and range types the backup recreates, in the definition's order (each after
 * the types it is built from), placed by the mapping. Part of schema-sql.ts.
 */
import { quoteIdent } from '../../../lib/contracts/identifiers.ts';
import type {
  CompositeDefinition,
  DomainDefinition,
  ExtensionDefinition,
  RangeDefinition,
  TypeDefinition,
} from './schema-definition.ts';
import type { Names } from './schema-names.ts';
import { quoteLiteral, unplaced } from './schema-names.ts';

/**
 * IF NOT EXISTS: a target that has it already (the same database, or installed by its operator) keeps its
 * own; its schema is created first when the target lacks it (an extension cannot be put in a missing one).
 */
export function extensionStatements(extensions: readonly ExtensionDefinition[]): string[] {
  const schemas = [...new Set(extensions.map((e) => e.schema))].filter((schema) => schema !== 'pg_catalog');
  return [
    ...schemas.map((schema) => `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)};`),
    ...extensions.map(
      (e) => `CREATE EXTENSION IF NOT EXISTS ${quoteIdent(e.name)} WITH SCHEMA ${quoteIdent(e.schema)};`,
    ),
  ];
}

function domainStatements(names: Names, domain: DomainDefinition): string[] {
  const parts = [`CREATE DOMAIN ${names.placed(domain)} AS ${names.type(domain.baseType)}`];
  if (domain.collation) parts.push(`COLLATE ${unplaced(domain.collation)}`);
  if (domain.default !== undefined) parts.push(`DEFAULT ${domain.default}`);
  if (domain.notNull) parts.push('NOT NULL');
  for (const check of domain.checks.filter((c) => c.validated)) {
    parts.push(`CONSTRAINT ${quoteIdent(check.name)} ${check.definition}`);
  }
  return [
    `${parts.join(' ')};`,
    // NOT VALID (in the definition): values that broke it when the backup was taken are in the data.
    ...domain.checks
      .filter((c) => !c.validated)
      .map(
        (check) =>
          `ALTER DOMAIN ${names.placed(domain)} ADD CONSTRAINT ${quoteIdent(check.name)} ${check.definition};`,
      ),
  ];
}

function compositeStatement(names: Names, composite: CompositeDefinition): string {
  const attributes = composite.attributes.map((a) =>
    [
      quoteIdent(a.name),
      names.type(a.type),
      ...(a.collation ? [`COLLATE ${unplaced(a.collation)}`] : []),
    ].join(' '),
  );
  return `CREATE TYPE ${names.placed(composite)} AS (${attributes.join(', ')});`;
}

function rangeStatement(names: Names, range: RangeDefinition): string {
  const options = [`SUBTYPE = ${names.type(range.subtype)}`];
  if (range.opclass) options.push(`SUBTYPE_OPCLASS = ${unplaced(range.opclass)}`);
  if (range.collation) options.push(`COLLATION = ${unplaced(range.collation)}`);
  if (range.subtypeDiff) options.push(`SUBTYPE_DIFF = ${unplaced(range.subtypeDiff)}`);
  // Named, not derived: the original's name may not be the one PostgreSQL would derive in the target.
  if (range.multirange) options.push(`MULTIRANGE_TYPE_NAME = ${names.placed(range.multirange)}`);
  return `CREATE TYPE ${names.placed(range)} AS RANGE (${options.join(', ')});`;
}

export function typeStatements(names: Names, types: readonly TypeDefinition[]): string[] {
  return types.flatMap((type): string[] => {
    if (type.kind === 'enum') {
      return [`CREATE TYPE ${names.placed(type)} AS ENUM (${type.labels.map(quoteLiteral).join(', ')});`];
    }
    if (type.kind === 'domain') return domainStatements(names, type);
    if (type.kind === 'composite') return [compositeStatement(names, type)];
    return [rangeStatement(names, type)];
  });
}
