/**
 * What a timed-out statement waited for, in words: which table-level lock mode it needed, which held (or
 * queued) locks conflict with it, and the sentence that names them. Pure: the rows come from pg_locks and
 * pg_stat_activity (functions/commons/lock-wait.ts).
 */

export const LOCK_MODES = [
  'AccessShareLock',
  'RowShareLock',
  'RowExclusiveLock',
  'ShareUpdateExclusiveLock',
  'ShareLock',
  'ShareRowExclusiveLock',
  'ExclusiveLock',
  'AccessExclusiveLock',
] as const;

export type LockMode = (typeof LOCK_MODES)[number];

/** PostgreSQL's table-level lock conflict matrix (docs: "Conflicting Lock Modes"). */
const CONFLICTS: Record<LockMode, readonly LockMode[]> = {
  AccessShareLock: ['AccessExclusiveLock'],
  RowShareLock: ['ExclusiveLock', 'AccessExclusiveLock'],
  RowExclusiveLock: ['ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock'],
  ShareUpdateExclusiveLock: [
    'ShareUpdateExclusiveLock',
    'ShareLock',
    'ShareRowExclusiveLock',
    'ExclusiveLock',
    'AccessExclusiveLock',
  ],
  ShareLock: [
    'RowExclusiveLock',
    'ShareUpdateExclusiveLock',
    'ShareRowExclusiveLock',
    'ExclusiveLock',
    'AccessExclusiveLock',
  ],
  ShareRowExclusiveLock: [
    'RowExclusiveLock',
    'ShareUpdateExclusiveLock',
    'ShareLock',
    'ShareRowExclusiveLock',
    'ExclusiveLock',
    'AccessExclusiveLock',
  ],
  ExclusiveLock: LOCK_MODES.slice(1),
  AccessExclusiveLock: LOCK_MODES,
};

export function conflicts(requested: LockMode, held: string): boolean {
  return (CONFLICTS[requested] as readonly string[]).includes(held);
}

/** Literals and comments out of the way, so that neither a keyword nor a name is found inside one. */
function stripLiterals(sql: string): string {
  return sql
    .replace(/'(?:[^']|'')*'/g, "''")
    .replace(/--[^\n]*/g, ' ')
    .replace(/\/\*[\s\S]*?\*\//g, ' ');
}

const LOCK_STATEMENT_MODES: ReadonlyArray<[RegExp, LockMode]> = [
  [/\bIN\s+ACCESS\s+SHARE\s+MODE\b/i, 'AccessShareLock'],
  [/\bIN\s+ROW\s+SHARE\s+MODE\b/i, 'RowShareLock'],
  [/\bIN\s+ROW\s+EXCLUSIVE\s+MODE\b/i, 'RowExclusiveLock'],
  [/\bIN\s+SHARE\s+UPDATE\s+EXCLUSIVE\s+MODE\b/i, 'ShareUpdateExclusiveLock'],
  [/\bIN\s+SHARE\s+ROW\s+EXCLUSIVE\s+MODE\b/i, 'ShareRowExclusiveLock'],
  [/\bIN\s+SHARE\s+MODE\b/i, 'ShareLock'],
  [/\bIN\s+EXCLUSIVE\s+MODE\b/i, 'ExclusiveLock'],
];

/**
 * The table-level lock a statement asks for, read from its text. The strongest it takes on its target, so
 * holders are not missed; relations it only reads in a subquery may be reported for a mode they did not
 * block (a SHARE lock held by CREATE INDEX blocks a DELETE, not its filter's lookups).
 */
export function requestedLockMode(sql: string): LockMode {
  const text = stripLiterals(sql).trim();
  if (/^LOCK\b/i.test(text)) {
    return LOCK_STATEMENT_MODES.find(([pattern]) => pattern.test(text))?.[1] ?? 'AccessExclusiveLock';
  }
  if (/^(?:VACUUM|ANALYZE)\b/i.test(text)) return 'ShareUpdateExclusiveLock';
  if (/^ALTER\b[\s\S]*\bDETACH\s+PARTITION\b[\s\S]*\b(?:CONCURRENTLY|FINALIZE)\b/i.test(text))
    return 'ShareUpdateExclusiveLock';
  if (/^(?:ALTER|DROP|TRUNCATE|CREATE|REINDEX|CLUSTER)\b/i.test(text)) return 'AccessExclusiveLock';
  // UPDATE as a statement, not the row-locking clause FOR [NO KEY] UPDATE of a SELECT.
  if (/\b(?:DELETE|INSERT|MERGE|COPY)\b/i.test(text) || /(?<!\bFOR\s+(?:NO\s+KEY\s+)?)\bUPDATE\b/i.test(text))
    return 'RowExclusiveLock';
  if (/\bFOR\s+(?:UPDATE|NO\s+KEY\s+UPDATE|SHARE|KEY\s+SHARE)\b/i.test(text)) return 'RowShareLock';
  return 'AccessShareLock';
}

/**
 * Names the statement may refer to a relation by: quoted identifiers exactly, unquoted ones folded to lower
 * case, as PostgreSQL reads them. Keywords come along; they only matter if a locked relation bears one.
 */
export function statementNames(sql: string): Set<string> {
  const names = new Set<string>();
  for (const match of stripLiterals(sql).matchAll(/"((?:[^"]|"")+)"|([A-Za-z_][A-Za-z0-9_$]*)/g)) {
    if (match[1] !== undefined) names.add(match[1].replaceAll('""', '"'));
    else if (match[2] !== undefined) names.add(match[2].toLowerCase());
  }
  return names;
}

/** A row lock wait leaves its relation and tuple in the error's context: `while locking tuple (0,1) in relation "x"`. */
export function tupleWaitOf(where: string | undefined): { relation: string; tid: string } | undefined {
  const firstLine = where?.split('\n')[0] ?? '';
  const match = /^while [a-z ]*tuple (\(\d+,\d+\)) in relation "(.*)"$/.exec(firstLine);
  return match ? { tid: match[1] as string, relation: match[2] as string } : undefined;
}

/** One session's lock on a relation, from pg_locks joined with pg_stat_activity. */
export interface RelationLock {
  readonly pid: number;
  readonly mode: string;
  readonly granted: boolean;
  /** `schema.table` as PostgreSQL quotes it (format('%I.%I')). */
  readonly relation: string;
  /** The relation's own name, its partition ancestors' and, for an index, its table's: what a statement may name. */
  readonly names: readonly string[];
  readonly applicationName: string | null;
  readonly state: string | null;
}

export interface LockWaitFacts {
  /** 55P03 (lock_timeout) or 57014 (statement_timeout). */
  readonly sqlstate: string;
  readonly elapsedMs: number;
  readonly statement: string;
  /** Set when the wait was for a row (the error's context names it). */
  readonly tupleRelation?: string | undefined;
  /** Other sessions' locks on relations in the database (ours excluded). */
  readonly locks: readonly RelationLock[];
  /** Sessions holding the very row waited for (from its xmax), when known. */
  readonly rowHolders?: readonly number[] | undefined;
}

const SHOWN_HOLDERS = 5;

/** The locks that blocked (or may have blocked) the statement, holders of the oldest transactions first. */
export function blockingLocks(facts: LockWaitFacts): RelationLock[] {
  if (facts.tupleRelation !== undefined) {
    const relation = facts.tupleRelation;
    // A row lock shows at table level as the holder's RowShareLock (FOR SHARE / FOR UPDATE) or
    // RowExclusiveLock (UPDATE, DELETE): every session holding one on that table is a candidate.
    const onTable = facts.locks.filter(
      (l) => l.granted && l.mode !== 'AccessShareLock' && l.names[0] === relation,
    );
    const exact = facts.rowHolders ? onTable.filter((l) => facts.rowHolders?.includes(l.pid)) : [];
    return exact.length > 0 ? exact : onTable;
  }
  const requested = requestedLockMode(facts.statement);
  const names = statementNames(facts.statement);
  return facts.locks.filter((l) => conflicts(requested, l.mode) && l.names.some((name) => names.has(name)));
}

function strength(mode: string): number {
  return (LOCK_MODES as readonly string[]).indexOf(mode);
}

function describeHolder(lock: RelationLock): string {
  const about = [lock.granted ? lock.mode : `waiting for ${lock.mode}, queued ahead`];
  if (lock.applicationName) about.push(`application_name ${lock.applicationName}`);
  if (lock.state) about.push(`state ${lock.state}`);
  return `pid ${lock.pid} (${about.join('; ')})`;
}

/**
 * `55P03: waited 2004 ms (lock_timeout) for a lock on public.events held by pid 4242 (AccessExclusiveLock;
 * application_name psql; state idle in transaction)`, or for a statement_timeout, what it timed out on.
 */
export function describeLockWait(facts: LockWaitFacts): string {
  const blocking = blockingLocks(facts);
  const relations = [...new Set(blocking.map((l) => l.relation))];
  // One entry per session (oldest transaction first), with its strongest lock among those that block.
  const byPid = new Map<number, RelationLock>();
  for (const lock of blocking) {
    const seen = byPid.get(lock.pid);
    if (!seen || strength(lock.mode) > strength(seen.mode)) byPid.set(lock.pid, lock);
  }
  const holders = [...byPid.values()];
  const shown = holders.slice(0, SHOWN_HOLDERS).map(describeHolder).join(', ');
  const more = holders.length > SHOWN_HOLDERS ? ` and ${holders.length - SHOWN_HOLDERS} more` : '';
  const what = facts.tupleRelation !== undefined ? 'a row lock' : 'a lock';
  const elapsed = Math.round(facts.elapsedMs);
  const on = relations.length > 0 ? ` on ${relations.join(', ')}` : '';
  if (facts.sqlstate === '55P03') {
    if (holders.length > 0)
      return `55P03: waited ${elapsed} ms (lock_timeout) for ${what}${on} held by ${shown}${more}`;
    const row = facts.tupleRelation !== undefined ? ` on a row of ${facts.tupleRelation}` : '';
    return `55P03: waited ${elapsed} ms (lock_timeout) for ${what}${row}; its holder had let go by the time it was looked up`;
  }
  if (holders.length > 0) {
    return `${facts.sqlstate}: statement timed out after ${elapsed} ms (statement_timeout); conflicting locks${on} were held by ${shown}${more}`;
  }
  return `${facts.sqlstate}: statement timed out after ${elapsed} ms (statement_timeout); no other session held a conflicting lock on the tables it names, so the statement itself took that long`;
}
