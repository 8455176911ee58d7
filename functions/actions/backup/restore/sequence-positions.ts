/**
 * Sequence positions for a data-only restore. pg_dump keeps them in its data section and pg_restore
 * --data-only sets them: a table loaded without them hands out ids its restored rows already hold. Here they
 * live in post-data.sql (schema-sql.ts writes one `SELECT pg_catalog.setval('<sequence>', <value>, <called>);`
 * per sequence), which data-only does not run as a whole; it takes those statements' values and applies them
 * to the sequences the restored tables own (serial, identity) or use in a column default, never to others.
 * With `--if-exists append` a sequence is only moved forward: rows already there may have used higher values.
 */
import type { Queryable } from '../../../adapters/transactions.ts';
import { splitStatements } from '../sql-text.ts';

export interface SequencePosition {
  /** The sequence as the file names it: `"schema"."name"` (relocated when into-schema). */
  readonly sequence: string;
  readonly value: string;
  readonly isCalled: boolean;
}

const SETVAL = /^SELECT pg_catalog\.setval\('((?:[^']|'')*)', (-?\d+), (true|false)\)$/;

/** The setval statements of a post-data file. */
export function sequencePositions(postData: string): SequencePosition[] {
  const positions: SequencePosition[] = [];
  for (const statement of splitStatements(postData)) {
    const match = SETVAL.exec(statement);
    if (!match) continue;
    positions.push({
      sequence: (match[1] as string).replaceAll("''", "'"),
      value: match[2] as string,
      isCalled: match[3] === 'true',
    });
  }
  return positions;
}

/**
 * Sets the positions of the sequences `tableOids` own or use in a default, in one transaction; returns the
 * sequences set. `forwardOnly`: leave a sequence that is already further.
 */
export async function applySequencePositions(
  db: Queryable,
  positions: readonly SequencePosition[],
  tableOids: readonly string[],
  options: { readonly forwardOnly: boolean; readonly lockTimeoutMs: number },
): Promise<string[]> {
  if (positions.length === 0 || tableOids.length === 0) return [];
  await db.query('BEGIN');
  try {
    await db.query(`SELECT set_config('lock_timeout', $1, true)`, [`${Math.trunc(options.lockTimeoutMs)}ms`]);
    const { rows } = await db.query<{ sequence: string }>(
      // setval in the select list: it runs only for the rows the WHERE keeps (a WHERE's conditions may be
      // evaluated in any order, so a call there could move a sequence that fails the others).
      `SELECT p.sequence, pg_catalog.setval(r.seq, p.value, p.called)::text AS position
         FROM ROWS FROM (jsonb_to_recordset($1::jsonb) AS (sequence text, value bigint, called boolean))
              WITH ORDINALITY AS p(sequence, value, called, n)
         CROSS JOIN LATERAL (SELECT to_regclass(p.sequence) AS seq) AS r
         CROSS JOIN LATERAL (
           SELECT EXISTS (SELECT 1 FROM pg_depend d
                           WHERE d.classid = 'pg_class'::regclass AND d.objid = r.seq
                             AND d.refclassid = 'pg_class'::regclass AND d.refobjid = ANY($2::oid[])
                             AND d.deptype IN ('a', 'i')) AS owned,
                  EXISTS (SELECT 1 FROM pg_depend d JOIN pg_attrdef ad ON ad.oid = d.objid
                           WHERE d.classid = 'pg_attrdef'::regclass AND d.refclassid = 'pg_class'::regclass
                             AND d.refobjid = r.seq AND ad.adrelid = ANY($2::oid[])) AS used,
                  EXISTS (SELECT 1 FROM pg_depend d JOIN pg_attrdef ad ON ad.oid = d.objid
                           WHERE d.classid = 'pg_attrdef'::regclass AND d.refclassid = 'pg_class'::regclass
                             AND d.refobjid = r.seq AND NOT ad.adrelid = ANY($2::oid[])) AS elsewhere) AS dep
        WHERE r.seq IS NOT NULL AND (dep.owned OR dep.used)
          -- Forward always; backwards only a sequence a restored table owns and no other table's default uses
          -- (outside append): moving back one that serves other tables would hand them ids they hold already.
          AND (coalesce(pg_sequence_last_value(r.seq) < p.value, true)
               OR (dep.owned AND NOT dep.elsewhere AND NOT $3::boolean))
        ORDER BY p.n`,
      [
        JSON.stringify(positions.map((p) => ({ sequence: p.sequence, value: p.value, called: p.isCalled }))),
        tableOids,
        options.forwardOnly,
      ],
    );
    await db.query('COMMIT');
    return rows.map((r) => r.sequence);
  } catch (error) {
    await db.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}
