/**
 * What only the server can tell about the compiled masks (strategies.ts), found before any row is touched:
 * each compiled `set` runs on synthetic values of the column's type, made up from the type and never read
 * from a row, in a savepoint that is always rolled back. `checkMasks` reports every column's problems at
 * Start; `previewMasks` shows what each strategy does. Messages and previews hold names, types, config and
 * synthetic values, never a row's value.
 */
import { quoteIdent } from '../../../lib/contracts/identifiers.ts';
import { pgBool } from '../../adapters/catalog.ts';
import type { Queryable } from '../../adapters/transactions.ts';
import { CatalogError, HashKeyError } from '../../core/errors.ts';
import type { MaskStrategy } from './contract.ts';
import type { HashKey } from './hash-key.ts';
import type { MaskedColumn } from './masked-columns.ts';
import { ParamList } from './param-list.ts';
import { compileMask, kindOf } from './strategies.ts';

/** A strategy's example inputs for a column: made up from its type, never read from a row. */
async function syntheticValues(
  db: Queryable,
  column: MaskedColumn,
  strategy: MaskStrategy,
): Promise<Array<string | null>> {
  const withinLength = (values: string[]) =>
    column.maxLength === undefined ? values : values.map((value) => value.slice(0, column.maxLength));
  switch (kindOf(column)) {
    case 'text':
      if (strategy.strategy === 'email')
        return withinLength(['jane.doe@example.com', 'J.Doe@Mail.Example.org']);
      if (strategy.strategy === 'ip')
        return withinLength(['192.168.17.42', '2001:db8:85a3::8a2e:370:7334', 'unknown']);
      return withinLength(['Jane Example', 'jane.doe@example.com', '+1 555 0100']);
    case 'uuid':
      return ['123e4567-e89b-12d3-a456-426614174000', 'f47ac10b-58cc-4372-a567-0e02b2c3d479'];
    case 'inet':
      return ['192.168.17.42', '2001:db8:85a3::8a2e:370:7334'];
    case 'cidr':
      return ['192.168.17.0/28', '2001:db8:85a3:1234::/64'];
    case 'date':
      return ['1984-06-15', '2021-12-31'];
    case 'timestamp':
      return ['1984-06-15 08:30:00', '2021-12-31 23:59:59.5'];
    case 'timestamptz':
      return ['1984-06-15 08:30:00+00', '2021-12-31 23:59:59.5+00'];
    case 'integer':
      return ['42', '1234'];
    case 'numeric':
    case 'float':
      return ['1234.56', '-7.5'];
    case 'json':
    case 'jsonb': {
      const removed = strategy.strategy === 'jsonb' ? strategy.removeKeys : ['name'];
      return [
        JSON.stringify({ ...Object.fromEntries(removed.map((key) => [key, 'Jane Example'])), kept: 1 }),
      ];
    }
    case 'enum': {
      const { rows } = await db.query<{ label: string }>(
        `SELECT enum_first(NULL::${column.baseTypeName})::text AS label`,
      );
      return rows.map((row) => row.label);
    }
    case 'array':
      return ['{}'];
    case 'other':
      return column.category === 'B' ? ['true', 'false'] : [null];
  }
}

const SAVEPOINT = 'pgl_mask_probe';

/**
 * Runs `work` with savepoints available: in the caller's transaction when there is one (its savepoints
 * are rolled back, so nothing of the probes remains), else in a READ ONLY transaction of its own, rolled
 * back. `db` must be one connection, not a pool.
 */
async function withProbes<T>(db: Queryable, work: () => Promise<T>): Promise<T> {
  try {
    await db.query(`SAVEPOINT ${SAVEPOINT}`);
    await db.query(`RELEASE SAVEPOINT ${SAVEPOINT}`);
  } catch (error) {
    if ((error as { code?: string }).code !== '25P01') throw error;
    await db.query('BEGIN READ ONLY');
    try {
      return await work();
    } finally {
      await db.query('ROLLBACK').catch(() => undefined);
    }
  }
  return work();
}

type ProbeResult<Row> = { ok: true; rows: Row[] } | { ok: false; error: Error };

/** One statement in a savepoint, always rolled back: an error leaves the transaction usable. */
async function probe<Row extends object>(
  db: Queryable,
  sql: string,
  values: ReadonlyArray<string | Buffer | null>,
): Promise<ProbeResult<Row>> {
  await db.query(`SAVEPOINT ${SAVEPOINT}`);
  try {
    const { rows } = await db.query<Row>(sql, [...values]);
    return { ok: true, rows };
  } catch (error) {
    return { ok: false, error: error as Error };
  } finally {
    await db.query(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}; RELEASE SAVEPOINT ${SAVEPOINT}`);
  }
}

/** The synthetic values that are values of the column's type (a domain's CHECK may refuse some). */
async function validInputs(db: Queryable, column: MaskedColumn, strategy: MaskStrategy) {
  const valid: Array<string | null> = [];
  for (const value of await syntheticValues(db, column, strategy)) {
    if (value === null || (await probe(db, `SELECT $1::text::${column.typeName}`, [value])).ok)
      valid.push(value);
  }
  return valid;
}

/**
 * `compileMask` over a bind parameter `$1` (text, cast to the column's type, in the column's collation: a
 * nondeterministic one refuses regexes and substring searches, as in the chunk); its own parameters follow.
 */
function compileOverParameter(column: MaskedColumn, strategy: MaskStrategy, key: HashKey | undefined) {
  const params = new ParamList(2);
  // Through a scalar subquery: its collation is implicit, as a column's is (an explicit COLLATE would clash
  // with the explicit "C" the strategies put on text).
  const value =
    column.collation === undefined
      ? `$1::text::${column.typeName}`
      : `(SELECT $1::text::${column.typeName} COLLATE ${column.collation})`;
  const mask = compileMask(column, strategy, value, params, key);
  return { mask, params };
}

/**
 * Every column's problems, one message per column, without throwing for them: a strategy that does not
 * apply, a missing key, and what only the server can tell (a `fixed` value that does not cast, a masked
 * value a domain refuses, a masked value not recognized as masked). Each compiled `set` runs once on a
 * synthetic value of the column's type in a savepoint. `strategies` is keyed by catalog name. Messages
 * hold names, types, config and synthetic values, never a row's value.
 */
export async function checkMasks(
  db: Queryable,
  columns: MaskedColumn[],
  strategies: Record<string, MaskStrategy>,
  key: HashKey | undefined,
): Promise<string[]> {
  const problems: string[] = [];
  const named = new Set(columns.map((column) => column.name));
  for (const name of Object.keys(strategies))
    if (!named.has(name)) problems.push(`column ${quoteIdent(name)}: not among the masked columns read`);
  await withProbes(db, async () => {
    for (const column of columns) {
      const problem = await columnProblem(db, column, strategies[column.name], key);
      if (problem) problems.push(problem);
    }
  });
  return problems;
}

async function columnProblem(
  db: Queryable,
  column: MaskedColumn,
  strategy: MaskStrategy | undefined,
  key: HashKey | undefined,
): Promise<string | undefined> {
  const where = `column ${quoteIdent(column.name)} (${column.typeName})`;
  if (!strategy) return `${where}: no strategy`;
  let compiled: ReturnType<typeof compileOverParameter>;
  try {
    compiled = compileOverParameter(column, strategy, key);
  } catch (error) {
    if (error instanceof CatalogError || error instanceof HashKeyError) return error.message;
    throw error;
  }
  const { mask, params } = compiled;
  const inputs = await validInputs(db, column, strategy);
  // A domain whose CHECK refuses every synthetic value leaves NULL, which proves nothing of a strategy that
  // computes from the value; null and fixed ignore it (their probe is their own value).
  if (
    !inputs.some((value) => value !== null) &&
    column.isDomain &&
    !['null', 'fixed'].includes(strategy.strategy)
  )
    return (
      `${where}: strategy ${strategy.strategy} could not be checked against the CHECK of domain ${column.typeName}: ` +
      'it refuses every synthetic value, so whether it accepts the masked values is unknown; use null or fixed ' +
      '(a value the domain accepts), or drop the column from the policy'
    );
  const input = inputs[0] ?? null;
  // The input is selected too: a `set` that ignores the value (null, fixed) leaves $1 unused otherwise, and the
  // server refuses a bind of more parameters than the statement has.
  const masked = await probe<{ after: string | null }>(
    db,
    `SELECT (${mask.set})::text AS after, $1::text IS NULL AS input_is_null`,
    [input, ...params.values],
  );
  if (!masked.ok) return `${where}: strategy ${strategy.strategy} fails: ${masked.error.message}`;
  if (mask.done === undefined) return undefined;
  const after = masked.rows[0]?.after ?? null;
  const again = await probe<{ done: boolean | string }>(db, `SELECT (${mask.done}) AS done`, [after]);
  if (!again.ok) return `${where}: strategy ${strategy.strategy} fails: ${again.error.message}`;
  if (!pgBool(again.rows[0]?.done))
    return `${where}: strategy ${strategy.strategy}: a masked value is not recognized as masked (the column's type changes it), so every run would rewrite it`;
  return undefined;
}

/** One column's preview: synthetic inputs and their masked forms, as text. */
export interface MaskPreview {
  readonly column: string;
  readonly strategy: string;
  readonly examples: Array<{ before: string | null; after: string | null }>;
}

/**
 * What each strategy does, shown on two or three synthetic values per column chosen from its type (never a
 * row), masked by the compiled `set` in SQL. `db` as for `checkMasks`.
 *
 * @throws CatalogError or HashKeyError as `compileMask`, or the server's error when a `set` fails (run `checkMasks` first)
 */
export async function previewMasks(
  db: Queryable,
  columns: MaskedColumn[],
  strategies: Record<string, MaskStrategy>,
  key: HashKey | undefined,
): Promise<MaskPreview[]> {
  return withProbes(db, async () => {
    const previews: MaskPreview[] = [];
    for (const column of columns) {
      const strategy = strategies[column.name];
      if (!strategy) continue;
      const { mask, params } = compileOverParameter(column, strategy, key);
      const examples: MaskPreview['examples'] = [];
      for (const input of await validInputs(db, column, strategy)) {
        const result = await probe<{ before: string | null; after: string | null }>(
          db,
          // format('%s') prints as the type's output does (an inet without its /32), and NULL stays NULL.
          `SELECT CASE WHEN b IS NOT NULL THEN format('%s', b) END AS before,
                  CASE WHEN a IS NOT NULL THEN format('%s', a) END AS after
             FROM (SELECT $1::text::${column.typeName} AS b, ${mask.set} AS a) AS pgl_preview`,
          [input, ...params.values],
        );
        if (!result.ok) throw result.error;
        const row = result.rows[0];
        if (row) examples.push({ before: row.before, after: row.after });
      }
      previews.push({ column: column.name, strategy: strategy.strategy, examples });
    }
    return previews;
  });
}
