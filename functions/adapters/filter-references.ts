/**
 * What a policy's filter makes PostgreSQL call, as PostgreSQL itself resolved it.
 *
 * The filter is parsed by the server (never evaluated): `DECLARE … CURSOR FOR SELECT 1 FROM <table> WHERE
 * false AND (<filter>)` in a READ ONLY transaction with `debug_print_parse` on, so the analysed parse tree
 * comes back as a LOG notice (`client_min_messages = log`; both settings are user-settable, also on RDS).
 * That tree names every function and operator by OID, whatever the spelling (`U&"dblink_exe\0063"`,
 * quoting, schema qualification, `OPERATOR(s.op)`, casts). Views, row-level-security policies of the
 * tables a subquery reads and domain CHECK constraints run code the tree only points at: their stored node
 * trees are read from the catalog and followed the same way.
 *
 * The notice is also written to the server log (LOG level), once per check: a few kilobytes naming the
 * filter's constants, never row values.
 */
import type pg from 'pg';
import {
  mergeNodeTreeReferences,
  type NodeTreeReferences,
  readNodeTreeReferences,
} from '../core/node-tree.ts';

/** How deep views over views (and policies reading views) are followed before refusing. */
const MAX_DEPTH = 16;

const CURSOR = 'pg_lifecycle_filter_check';

/** Something the filter would make the server run or touch that a filter may not. */
export interface FilterHazard {
  readonly kind: 'volatile' | 'foreign-table' | 'row-lock' | 'too-deep';
  /** What it is, as the catalog names it (`dblink_exec(text,text)`, `operator ===(integer,integer)`). */
  readonly what: string;
}

/** The server's parse tree of the filter in the context of the table. Runs inside the caller's transaction. */
async function readParseTree(client: pg.ClientBase, qualifiedName: string, filter: string): Promise<string> {
  const trees: string[] = [];
  let capturing = false;
  const onNotice = (notice: { message?: string; detail?: string }) => {
    if (capturing && notice.message?.startsWith('parse tree') && notice.detail) trees.push(notice.detail);
  };
  client.on('notice', onNotice);
  try {
    await client.query(
      `SELECT set_config('client_min_messages', 'log', true), set_config('debug_pretty_print', 'off', true),
              set_config('debug_print_parse', 'on', true)`,
    );
    capturing = true;
    // `false AND`: the planner (which DECLARE runs) folds the condition away; the parse tree keeps it whole.
    await client.query(
      `DECLARE ${CURSOR} NO SCROLL CURSOR FOR SELECT 1 FROM ${qualifiedName} WHERE false AND (${filter})`,
    );
    capturing = false;
    await client.query(`CLOSE ${CURSOR}`);
    await client.query(`SELECT set_config('debug_print_parse', 'off', true)`);
  } finally {
    capturing = false;
    client.removeListener('notice', onNotice);
  }
  const tree = trees.find((t) => t.includes('DECLARECURSORSTMT'));
  if (!tree) {
    throw new FilterCheckUnavailable(
      'the server sent no parse tree (debug_print_parse / client_min_messages could not be set, or a ' +
        'connection pooler dropped the LOG notice)',
    );
  }
  return tree;
}

/** The filter could not be checked: refuse rather than run it unchecked. */
export class FilterCheckUnavailable extends Error {
  override readonly name = 'FilterCheckUnavailable';
}

/** Node trees stored in the catalog that the given references make the server evaluate. */
async function readDependentTrees(
  db: Pick<pg.ClientBase, 'query'>,
  refs: NodeTreeReferences,
  tableOid: string,
  seenRelations: Set<string>,
  seenDomains: Set<string>,
): Promise<string[]> {
  const views: string[] = [];
  const others: string[] = [];
  for (const [oid, kind] of refs.relations) {
    if (seenRelations.has(oid)) continue;
    seenRelations.add(oid);
    if (kind === 'v') views.push(oid);
    // The table's own policies apply to every run, filter or not: only what the filter adds is checked.
    else if (oid !== tableOid) others.push(oid);
  }
  const domains = [...refs.domains].filter((oid) => !seenDomains.has(oid));
  for (const oid of domains) seenDomains.add(oid);
  if (views.length === 0 && others.length === 0 && domains.length === 0) return [];
  const { rows } = await db.query<{ tree: string }>(
    `SELECT ev_action::text AS tree FROM pg_rewrite WHERE ev_class = ANY ($1::oid[]) AND ev_type = '1'
     UNION ALL
     SELECT p.polqual::text FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
      WHERE p.polrelid = ANY ($2::oid[]) AND c.relrowsecurity AND p.polcmd IN ('r', '*') AND p.polqual IS NOT NULL
     UNION ALL
     (WITH RECURSIVE chain AS (
        SELECT oid, typbasetype FROM pg_type WHERE oid = ANY ($3::oid[]) AND typtype = 'd'
        UNION
        SELECT t.oid, t.typbasetype FROM pg_type t JOIN chain ON t.oid = chain.typbasetype WHERE t.typtype = 'd')
      SELECT c.conbin::text FROM pg_constraint c JOIN chain ON c.contypid = chain.oid WHERE c.conbin IS NOT NULL)`,
    [views, others, domains],
  );
  return rows.map((r) => r.tree);
}

/** Every function, operator, aggregate and input function among `refs` that is volatile. */
async function findVolatile(db: Pick<pg.ClientBase, 'query'>, refs: NodeTreeReferences): Promise<string[]> {
  const { rows } = await db.query<{ what: string }>(
    `SELECT p.oid::regprocedure::text AS what FROM pg_proc p
      WHERE p.oid = ANY ($1::oid[]) AND p.provolatile = 'v'
        -- An operator's function is named with the operator.
        AND NOT EXISTS (SELECT 1 FROM pg_operator o WHERE o.oid = ANY ($2::oid[]) AND o.oprcode = p.oid)
     UNION
     SELECT format('operator %s (function %s)', o.oid::regoperator, p.oid::regprocedure)
       FROM pg_operator o JOIN pg_proc p ON p.oid = o.oprcode
      WHERE o.oid = ANY ($2::oid[]) AND p.provolatile = 'v'
     UNION
     SELECT format('aggregate %s (support function %s)', a.aggfnoid::regprocedure, p.oid::regprocedure)
       FROM pg_aggregate a
       JOIN pg_proc p ON p.oid IN (a.aggtransfn, a.aggfinalfn, a.aggcombinefn, a.aggserialfn,
                                   a.aggdeserialfn, a.aggmtransfn, a.aggminvtransfn, a.aggmfinalfn)
      WHERE a.aggfnoid = ANY ($1::oid[]) AND p.provolatile = 'v'
     UNION
     SELECT format('input function %s of type %s', p.oid::regprocedure, t.oid::regtype)
       FROM pg_type t JOIN pg_proc p ON p.oid = t.typinput
      WHERE t.oid = ANY ($3::oid[]) AND p.provolatile = 'v'
     ORDER BY 1`,
    [[...refs.functions], [...refs.operators], [...refs.inputTypes]],
  );
  return rows.map((r) => r.what);
}

async function relationNames(db: Pick<pg.ClientBase, 'query'>, oids: string[]): Promise<string[]> {
  const { rows } = await db.query<{ name: string }>(
    'SELECT oid::regclass::text AS name FROM pg_class WHERE oid = ANY ($1::oid[]) ORDER BY 1',
    [oids],
  );
  return rows.map((r) => r.name);
}

/**
 * Parses the filter on the server and lists what makes it unsafe to evaluate on rows: volatile functions
 * and operators (anything not IMMUTABLE or STABLE may write, through dblink even outside a READ ONLY
 * transaction, end sessions or change settings), foreign tables (their server runs whatever it runs) and
 * row locks (FOR UPDATE/SHARE would lock other tables' rows for each chunk). Must run inside a transaction
 * (the caller's READ ONLY one); leaves its settings as it found them. Errors of the filter itself (42xxx)
 * surface as thrown by the server.
 */
export async function findFilterHazards(
  client: pg.ClientBase,
  qualifiedName: string,
  tableOid: string,
  filter: string,
): Promise<FilterHazard[]> {
  const seenRelations = new Set<string>();
  const seenDomains = new Set<string>();
  const all: NodeTreeReferences[] = [];
  let trees = [await readParseTree(client, qualifiedName, filter)];
  let depth = 0;
  while (trees.length > 0) {
    if (++depth > MAX_DEPTH) return [{ kind: 'too-deep', what: `views nested deeper than ${MAX_DEPTH}` }];
    const refs = mergeNodeTreeReferences(trees.map(readNodeTreeReferences));
    all.push(refs);
    trees = await readDependentTrees(client, refs, tableOid, seenRelations, seenDomains);
  }
  const refs = mergeNodeTreeReferences(all);
  const hazards: FilterHazard[] = (await findVolatile(client, refs)).map((what) => ({
    kind: 'volatile' as const,
    what,
  }));
  const foreign = [...refs.relations].filter(([, kind]) => kind === 'f').map(([oid]) => oid);
  for (const name of await relationNames(client, foreign))
    hazards.push({ kind: 'foreign-table', what: name });
  if (refs.locksRows) hazards.push({ kind: 'row-lock', what: 'FOR UPDATE / FOR SHARE' });
  return hazards;
}
