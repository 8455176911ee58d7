/**
 * Which functions a policy's filter may make PostgreSQL run.
 *
 * Allowed: PostgreSQL's own functions (created by initdb: OID below 16384) that are IMMUTABLE or STABLE,
 * except those that run other code a parse tree does not show — the `*_to_xml` family, which reads the
 * rows of relations named in a string, and the json producers while a cast to json that is not allowed
 * exists (to_jsonb and friends call such casts for user types) —, plus the functions the policy lists in
 * `filterFunctions` (IMMUTABLE or STABLE, checked here). Everything else is refused: volatile functions,
 * and functions of extensions or users, whose volatility label is their author's word (a function declared
 * IMMUTABLE may still write through dblink, and tablefunc's STABLE crosstab runs any SQL it is given).
 * Listing one in `filterFunctions` is that word made visible in the config.
 */
import { InvalidFilterError } from '../core/errors.ts';
import {
  mergeNodeTreeReferences,
  type NodeTreeReferences,
  readNodeTreeReferences,
} from '../core/node-tree.ts';
import type { Queryable } from './transactions.ts';

/** First OID not assigned by initdb (FirstNormalObjectId): below it, PostgreSQL's own objects. */
const FIRST_NORMAL_OBJECT_ID = 16384;

/** pg_catalog functions that read the rows of relations named in their (text or regclass) arguments. */
const RUNS_NAMED_RELATIONS = `(p.proname ~ '^(table|schema|database|query|cursor)_to_xml')`;

/** pg_catalog functions that turn values into json through the casts to json of their types. */
const CALLS_JSON_CASTS = `(p.proname ~ '^(to_jsonb?|row_to_json|array_to_json|jsonb?_agg.*|jsonb?_object_agg.*|jsonb?_build_(object|array))$')`;

const OIDS = /^[0-9]+$/;

/** The allowed functions for one check, as SQL over `pg_proc p`. */
export interface FunctionSafety {
  /** SQL: true when `p` may not be called. */
  readonly unsafe: string;
  /** SQL: why `p` may not be called. */
  readonly reason: string;
}

/** `{1,2}` as an oid[] literal: the OIDs come from the catalog and are checked to be digits. */
function oidArray(oids: readonly string[]): string {
  for (const oid of oids) if (!OIDS.test(oid)) throw new Error(`not an OID: ${oid}`);
  return `'{${oids.join(',')}}'::oid[]`;
}

/**
 * Resolves `filterFunctions` (`schema.name(argtypes)`) to OIDs, refusing unknown and volatile ones.
 * @throws InvalidFilterError naming the entry
 */
export async function resolveFilterFunctions(
  db: Queryable,
  signatures: readonly string[],
): Promise<string[]> {
  if (signatures.length === 0) return [];
  const oids: string[] = [];
  for (const signature of signatures) {
    // Every value arrives as text (functions/commons/database.ts): compare the volatility letter.
    let rows: Array<{ oid: string | null; volatility: string | null; name: string | null }>;
    try {
      ({ rows } = await db.query(
        `SELECT p.oid::text AS oid, p.provolatile AS volatility, p.oid::regprocedure::text AS name
           FROM (SELECT to_regprocedure($1) AS oid) r LEFT JOIN pg_proc p ON p.oid = r.oid`,
        [signature],
      ));
    } catch (error) {
      // to_regprocedure answers NULL for an unknown function, but raises for an unknown argument type.
      const code = (error as { code?: string }).code;
      const problem =
        code === '42704'
          ? `names an argument type that does not exist (${(error as Error).message})`
          : 'is not a function signature such as public.f(integer, text)';
      throw new InvalidFilterError(`filterFunctions: ${JSON.stringify(signature)} ${problem}`, {
        cause: error,
      });
    }
    const row = rows[0];
    if (!row?.oid) {
      throw new InvalidFilterError(`filterFunctions: function ${JSON.stringify(signature)} does not exist`);
    }
    if (row.volatility === 'v') {
      throw new InvalidFilterError(
        `filterFunctions: ${row.name} is volatile; only immutable or stable functions may be listed`,
      );
    }
    oids.push(row.oid);
  }
  return oids;
}

/** Casts to json/jsonb whose function is neither PostgreSQL's own nor allowed, e.g. `mood → json via f(mood)`. */
async function readUnsafeJsonCasts(db: Queryable, allowed: readonly string[]): Promise<string[]> {
  const { rows } = await db.query<{ what: string }>(
    `SELECT format('%s → %s via %s', c.castsource::regtype, c.casttarget::regtype, c.castfunc::regprocedure) AS what
       FROM pg_cast c
      WHERE c.casttarget IN ('json'::regtype, 'jsonb'::regtype) AND c.castfunc <> 0
        AND c.castfunc >= ${FIRST_NORMAL_OBJECT_ID} AND c.castfunc <> ALL (${oidArray(allowed)})
      ORDER BY 1`,
  );
  return rows.map((r) => r.what);
}

/** The safety rule of one check: PostgreSQL's own stable/immutable functions and `allowed`. */
export async function readFunctionSafety(db: Queryable, allowed: readonly string[]): Promise<FunctionSafety> {
  const jsonCasts = await readUnsafeJsonCasts(db, allowed);
  const jsonUnsafe = jsonCasts.length > 0;
  const castList = jsonCasts.join(', ').replace(/'/g, "''");
  return {
    unsafe: `NOT (p.oid = ANY (${oidArray(allowed)})
                  OR (p.oid < ${FIRST_NORMAL_OBJECT_ID} AND p.provolatile <> 'v' AND NOT ${RUNS_NAMED_RELATIONS}
                      AND NOT (${jsonUnsafe} AND ${CALLS_JSON_CASTS})))`,
    reason: `CASE WHEN p.provolatile = 'v' THEN 'volatile'
                  WHEN p.oid >= ${FIRST_NORMAL_OBJECT_ID} THEN 'not PostgreSQL''s own: list it in filterFunctions if it only reads'
                  WHEN ${RUNS_NAMED_RELATIONS} THEN 'reads rows of relations named in its arguments'
                  ELSE 'calls casts to json that are not allowed: ${castList}' END`,
  };
}

/** Every function, operator and aggregate among `refs` that may not be called, named as the catalog names it. */
export async function findUnsafeCalls(
  db: Queryable,
  refs: NodeTreeReferences,
  safety: FunctionSafety,
): Promise<string[]> {
  const { rows } = await db.query<{ what: string }>(
    `SELECT format('%s (%s)', p.oid::regprocedure, ${safety.reason}) AS what FROM pg_proc p
      WHERE p.oid = ANY ($1::oid[]) AND ${safety.unsafe}
        -- An operator's function is named with the operator.
        AND NOT EXISTS (SELECT 1 FROM pg_operator o WHERE o.oid = ANY ($2::oid[]) AND o.oprcode = p.oid)
     UNION
     SELECT format('operator %s (function %s, %s)', o.oid::regoperator, p.oid::regprocedure, ${safety.reason})
       FROM pg_operator o JOIN pg_proc p ON p.oid = o.oprcode
      WHERE o.oid = ANY ($2::oid[]) AND ${safety.unsafe}
     UNION
     SELECT format('aggregate %s (support function %s, %s)', a.aggfnoid::regprocedure, p.oid::regprocedure, ${safety.reason})
       FROM pg_aggregate a
       JOIN pg_proc p ON p.oid IN (a.aggtransfn, a.aggfinalfn, a.aggcombinefn, a.aggserialfn,
                                   a.aggdeserialfn, a.aggmtransfn, a.aggminvtransfn, a.aggmfinalfn)
      WHERE a.aggfnoid = ANY ($1::oid[]) AND ${safety.unsafe}
     ORDER BY 1`,
    [[...refs.functions], [...refs.operators]],
  );
  return rows.map((r) => r.what);
}

/** Types whose making runs code a filter may not call (see {@link readUnsafeTypes}). */
export interface UnsafeTypes {
  /** OID → name, for every such type. */
  readonly types: ReadonlyMap<string, string>;
  /** Why, per type: its root domains' reasons (`hostile_positive: CHECK calls hostile_touch() (volatile)`). */
  readonly reasons: ReadonlyMap<string, readonly string[]>;
  /** Every root reason. */
  readonly allReasons: readonly string[];
}

/**
 * Types whose values run code a filter may not call when made: domains whose CHECK constraints call such
 * code (or base types whose input function is volatile), and every type holding one — domains over them,
 * arrays, row types (tables' included), ranges, multiranges.
 */
export async function readUnsafeTypes(db: Queryable, safety: FunctionSafety): Promise<UnsafeTypes> {
  const { rows: checks } = await db.query<{ type: string; name: string; tree: string }>(
    `SELECT contypid::text AS type, contypid::regtype::text AS name, conbin::text AS tree
       FROM pg_constraint WHERE contypid <> 0 AND conbin IS NOT NULL`,
  );
  const checkRefs = checks.map((check) => ({ ...check, refs: readNodeTreeReferences(check.tree) }));
  const union = mergeNodeTreeReferences(checkRefs.map((c) => c.refs));
  const { rows: unsafe } = await db.query<{ oid: string; what: string }>(
    `SELECT p.oid::text AS oid, format('%s (%s)', p.oid::regprocedure, ${safety.reason}) AS what
       FROM pg_proc p WHERE p.oid = ANY ($1::oid[]) AND ${safety.unsafe}
     UNION
     SELECT o.oid::text, format('operator %s (function %s, %s)', o.oid::regoperator, p.oid::regprocedure, ${safety.reason})
       FROM pg_operator o JOIN pg_proc p ON p.oid = o.oprcode
      WHERE o.oid = ANY ($2::oid[]) AND ${safety.unsafe}`,
    [[...union.functions], [...union.operators]],
  );
  // Function and operator OIDs share one space (pg_proc and pg_operator draw from the same OID counter).
  const unsafeCalls = new Map(unsafe.map((r) => [r.oid, r.what]));
  const rootReasons = new Map<string, string>();
  for (const check of checkRefs) {
    const calls = [...check.refs.functions, ...check.refs.operators].flatMap(
      (oid) => unsafeCalls.get(oid) ?? [],
    );
    if (calls.length === 0) continue;
    const reason = `${check.name}: CHECK calls ${calls.join(', ')}`;
    rootReasons.set(check.type, [rootReasons.get(check.type), reason].filter(Boolean).join('; '));
  }
  const { rows } = await db.query<{ oid: string; name: string; root: string; root_name: string }>(
    `WITH RECURSIVE unsafe(oid, root) AS (
       SELECT seed, seed FROM unnest($1::oid[]) AS seed
       UNION
       SELECT t.oid, t.oid FROM pg_type t JOIN pg_proc p ON p.oid = t.typinput WHERE p.provolatile = 'v'
       UNION
       SELECT t.oid, u.root FROM pg_type t JOIN unsafe u
         ON t.typbasetype = u.oid
         OR t.typelem = u.oid
         OR (t.typrelid <> 0 AND EXISTS (SELECT 1 FROM pg_attribute a
                                          WHERE a.attrelid = t.typrelid AND a.attnum > 0
                                            AND NOT a.attisdropped AND a.atttypid = u.oid))
         OR EXISTS (SELECT 1 FROM pg_range r WHERE r.rngtypid = t.oid AND r.rngsubtype = u.oid)
         OR EXISTS (SELECT 1 FROM pg_range r WHERE r.rngmultitypid = t.oid AND r.rngtypid = u.oid))
     SELECT u.oid::text AS oid, u.oid::regtype::text AS name, u.root::text AS root,
            u.root::regtype::text AS root_name
       FROM unsafe u ORDER BY 2, 4`,
    [[...rootReasons.keys()]],
  );
  const types = new Map<string, string>();
  const reasons = new Map<string, string[]>();
  for (const row of rows) {
    types.set(row.oid, row.name);
    const reason = rootReasons.get(row.root) ?? `${row.root_name}: its input function is volatile`;
    const list = reasons.get(row.oid) ?? [];
    if (!list.includes(reason)) list.push(reason);
    reasons.set(row.oid, list);
  }
  return { types, reasons, allReasons: [...new Set([...reasons.values()].flat())] };
}
