/**
 * What a policy's filter makes PostgreSQL run, as PostgreSQL itself resolved it.
 *
 * The filter is parsed by the server, never evaluated nor planned (a planner estimating an operator's
 * selectivity may call the operator's function): `PREPARE … AS SELECT 1 AS <nonce> FROM <table> WHERE
 * (<filter>)` in a READ ONLY transaction with `debug_print_parse` on, so the analysed parse tree comes back
 * as a LOG notice (`client_min_messages = log`; both settings are user-settable, also on RDS). The random
 * column name picks our tree out of any other a function might print while the filter is parsed. That tree
 * names every function and operator by OID, whatever the spelling (`U&"dblink_exe\0063"`, quoting, schema
 * qualification, `OPERATOR(s.op)`, casts). Views and the row-level-security policies of the tables a
 * subquery reads run code the tree only points at: their stored node trees are read from the catalog and
 * followed the same way; partitions and inheritance children are looked up for foreign tables.
 *
 * Domain CHECK constraints run whenever a value of the domain is made — also while PostgreSQL parses a
 * literal of a row or array type holding the domain, i.e. before any parse tree exists. So the types whose
 * making runs code a filter may not call are found first, from the catalog; a filter with string literals
 * is not even parsed in a database that has any.
 *
 * The notice is also written to the server log (LOG level), once per check: a few kilobytes naming the
 * filter's constants, never row values. Which functions are allowed: adapters/function-safety.ts.
 */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { hasStringLiteral } from '../../lib/contracts/config.ts';
import {
  mergeNodeTreeReferences,
  type NodeTreeReferences,
  readNodeTreeReferences,
} from '../core/node-tree.ts';
import { findUnsafeCalls, readFunctionSafety, readUnsafeTypes } from './function-safety.ts';
import type { Queryable } from './transactions.ts';

/** How deep views over views (and policies reading views) are followed before refusing. */
const MAX_DEPTH = 16;

/** Something the filter would make the server run or touch that a filter may not. */
export interface FilterHazard {
  readonly kind:
    | 'unsafe-call'
    | 'unsafe-type'
    | 'literal-with-unsafe-types'
    | 'foreign-table'
    | 'row-lock'
    | 'too-deep';
  /** What it is, as the catalog names it (`dblink_exec(text,text) (volatile)`, `operator ===(…)`). */
  readonly what: string;
}

/** The filter could not be checked: refuse rather than run it unchecked. */
export class FilterCheckUnavailable extends Error {
  override readonly name = 'FilterCheckUnavailable';
}

/** The server's parse tree of the filter in the context of the table. Runs inside the caller's transaction. */
async function readParseTree(client: pg.ClientBase, qualifiedName: string, filter: string): Promise<string> {
  const nonce = `pg_lifecycle_${randomBytes(8).toString('hex')}`;
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
    try {
      // PREPARE analyses and rewrites; it does not plan (DECLARE would, and planning may call operators).
      await client.query(`PREPARE ${nonce} AS SELECT 1 AS ${nonce} FROM ${qualifiedName} WHERE (${filter})`);
    } finally {
      capturing = false;
      // Prepared statements outlive a rolled-back transaction.
      await client.query(`DEALLOCATE ${nonce}`).catch(() => undefined);
    }
    await client.query(`SELECT set_config('debug_print_parse', 'off', true)`);
  } finally {
    capturing = false;
    client.removeListener('notice', onNotice);
  }
  // The last tree naming the nonce: trees a function printed while the filter was parsed come before it
  // and cannot know the nonce.
  const ours = new RegExp(`:resname\\s+${nonce}\\s`);
  const tree = trees.findLast((t) => /^\{QUERY\s+:commandType\s+1\s/.test(t) && ours.test(t));
  if (!tree) {
    throw new FilterCheckUnavailable(
      'the server sent no parse tree (debug_print_parse / client_min_messages could not be set, or a ' +
        'connection pooler dropped the LOG notice)',
    );
  }
  return tree;
}

/** Node trees stored in the catalog that the given references make the server evaluate. */
async function readDependentTrees(
  db: Queryable,
  refs: NodeTreeReferences,
  tableOid: string,
  seen: Set<string>,
): Promise<string[]> {
  const views: string[] = [];
  const others: string[] = [];
  for (const [oid, kind] of refs.relations) {
    if (seen.has(oid)) continue;
    seen.add(oid);
    if (kind === 'v') views.push(oid);
    // The table's own policies apply to every run, filter or not: only what the filter adds is checked.
    else if (oid !== tableOid) others.push(oid);
  }
  if (views.length === 0 && others.length === 0) return [];
  const { rows } = await db.query<{ tree: string }>(
    `SELECT ev_action::text AS tree FROM pg_rewrite WHERE ev_class = ANY ($1::oid[]) AND ev_type = '1'
     UNION ALL
     SELECT p.polqual::text FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
      WHERE p.polrelid = ANY ($2::oid[]) AND c.relrowsecurity AND p.polcmd IN ('r', '*') AND p.polqual IS NOT NULL`,
    [views, others],
  );
  return rows.map((r) => r.tree);
}

/**
 * Foreign tables among the relations read and their partitions and inheritance children (a query on a
 * parent reads them too). The table itself is left out: its own partitions are read by every run.
 */
async function foreignTablesRead(
  db: Queryable,
  relations: readonly string[],
  tableOid: string,
): Promise<string[]> {
  const { rows } = await db.query<{ name: string }>(
    `WITH RECURSIVE tree(oid) AS (
       SELECT unnest($1::oid[])
       UNION
       SELECT i.inhrelid FROM pg_inherits i JOIN tree ON i.inhparent = tree.oid)
     SELECT c.oid::regclass::text AS name FROM tree JOIN pg_class c ON c.oid = tree.oid
      WHERE c.relkind = 'f' ORDER BY 1`,
    [relations.filter((oid) => oid !== tableOid)],
  );
  return rows.map((r) => r.name);
}

/**
 * Parses the filter on the server and lists what makes it unsafe to evaluate on rows: calls a filter may
 * not make (adapters/function-safety.ts), values made of types whose CHECK makes such calls, foreign tables
 * (their server runs whatever it runs) and row locks (FOR UPDATE/SHARE would lock other tables' rows for
 * each chunk). `allowed`: OIDs of the policy's filterFunctions. Must run inside a transaction (the caller's
 * READ ONLY one); leaves its settings as it found them. Errors of the filter itself (42xxx) surface as
 * thrown by the server.
 */
export async function findFilterHazards(
  client: pg.ClientBase,
  target: { qualifiedName: string; tableOid: string; filter: string; allowed: readonly string[] },
): Promise<FilterHazard[]> {
  const safety = await readFunctionSafety(client, target.allowed);
  const unsafeTypes = await readUnsafeTypes(client, safety);
  if (unsafeTypes.types.size > 0 && hasStringLiteral(target.filter)) {
    // Parsing '(5)'::row_type already runs the CHECK of a domain field: do not parse at all.
    const names = [...unsafeTypes.types.values()].join(', ');
    return [{ kind: 'literal-with-unsafe-types', what: `${names}; ${unsafeTypes.allReasons.join('; ')}` }];
  }
  const seen = new Set<string>();
  const all: NodeTreeReferences[] = [];
  let trees = [await readParseTree(client, target.qualifiedName, target.filter)];
  for (let depth = 1; trees.length > 0; depth++) {
    if (depth > MAX_DEPTH) return [{ kind: 'too-deep', what: `views nested deeper than ${MAX_DEPTH}` }];
    const refs = mergeNodeTreeReferences(trees.map(readNodeTreeReferences));
    all.push(refs);
    trees = await readDependentTrees(client, refs, target.tableOid, seen);
  }
  const refs = mergeNodeTreeReferences(all);
  const hazards: FilterHazard[] = (await findUnsafeCalls(client, refs, safety)).map((what) => ({
    kind: 'unsafe-call' as const,
    what,
  }));
  const made = [...refs.producedTypes].filter((oid) => unsafeTypes.types.has(oid));
  if (made.length > 0) {
    const names = made.map((oid) => unsafeTypes.types.get(oid)).join(', ');
    const why = [...new Set(made.flatMap((oid) => unsafeTypes.reasons.get(oid) ?? []))].join('; ');
    hazards.push({ kind: 'unsafe-type', what: `${names} (${why})` });
  }
  const foreign = await foreignTablesRead(client, [...refs.relations.keys()], target.tableOid);
  for (const name of foreign) hazards.push({ kind: 'foreign-table', what: name });
  if (refs.locksRows) hazards.push({ kind: 'row-lock', what: 'FOR UPDATE / FOR SHARE' });
  return hazards;
}
