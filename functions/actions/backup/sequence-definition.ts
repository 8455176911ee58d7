/**
 * The sequences a backup recreates, from pg_catalog: those a backed-up column owns (serial/OWNED BY and
 * identity), and those a backed-up default uses that no backed-up column owns (table-dependencies.ts finds
 * them), with their options and where they stand. Part of table-definition.ts.
 */
import { quoteQualified } from '../../../lib/contracts/identifiers.ts';
import type { Queryable } from '../../adapters/transactions.ts';
import { CatalogError } from '../../core/errors.ts';
import { pgBool } from './catalog-values.ts';
import type { QualifiedName, SequenceOptions, SequenceState } from './schema-definition.ts';

export interface SequenceRow {
  oid: string;
  nspname: string;
  relname: string;
  /** The owning column's table and name, and 'a' (serial/OWNED BY) or 'i' (identity); NULL when unowned here. */
  table_oid: string | null;
  column_name: string | null;
  deptype: string | null;
  data_type: string;
  start: string;
  increment: string;
  min: string;
  max: string;
  cache: string;
  cycle: unknown;
}

const OPTIONS = `format_type(q.seqtypid, NULL) AS data_type, q.seqstart::text AS start,
  q.seqincrement::text AS increment, q.seqmin::text AS min, q.seqmax::text AS max,
  q.seqcache::text AS cache, q.seqcycle AS cycle`;

/** Sequences owned by a column of the tables: serial/OWNED BY ('a') and identity ('i'). */
export async function readOwnedSequences(
  db: Queryable,
  tableOids: readonly string[],
): Promise<SequenceRow[]> {
  const { rows } = await db.query<SequenceRow>(
    `SELECT s.oid::text AS oid, n.nspname, s.relname, d.refobjid::text AS table_oid, a.attname AS column_name,
            d.deptype::text AS deptype, ${OPTIONS}
       FROM pg_depend d
       JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
       JOIN pg_namespace n ON n.oid = s.relnamespace
       JOIN pg_sequence q ON q.seqrelid = s.oid
       JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
      WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
        AND d.deptype IN ('a', 'i') AND d.refobjid = ANY ($1::oid[])
      ORDER BY n.nspname, s.relname`,
    [tableOids],
  );
  return rows;
}

/** The sequences `oids`, as unowned: whatever owns them is not part of the backup. */
export async function readSequences(db: Queryable, oids: readonly string[]): Promise<SequenceRow[]> {
  const { rows } = await db.query<SequenceRow>(
    `SELECT s.oid::text AS oid, n.nspname, s.relname, NULL AS table_oid, NULL AS column_name, NULL AS deptype,
            ${OPTIONS}
       FROM pg_class s
       JOIN pg_namespace n ON n.oid = s.relnamespace
       JOIN pg_sequence q ON q.seqrelid = s.oid
      WHERE s.oid = ANY ($1::oid[])
      ORDER BY n.nspname, s.relname`,
    [oids],
  );
  return rows;
}

/** last_value and is_called, read from the sequence itself (pg_sequences hides them from some roles). */
export async function readSequenceState(db: Queryable, sequence: QualifiedName): Promise<SequenceState> {
  const { rows } = await db.query<{ last_value: string; is_called: unknown }>(
    `SELECT last_value::text AS last_value, is_called FROM ${quoteQualified(sequence.schema, sequence.name)}`,
  );
  const row = rows[0];
  if (!row)
    throw new CatalogError(`sequence ${quoteQualified(sequence.schema, sequence.name)} returned no row`);
  return { lastValue: row.last_value, isCalled: pgBool(row.is_called) };
}

export function sequenceOptions(r: SequenceRow): SequenceOptions {
  return {
    dataType: r.data_type,
    start: r.start,
    increment: r.increment,
    min: r.min,
    max: r.max,
    cache: r.cache,
    cycle: pgBool(r.cycle),
  };
}
