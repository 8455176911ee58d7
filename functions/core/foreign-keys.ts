/**
 * Whether a purge may delete from a table that other tables reference. Pure: the catalog rows and the
 * resolved child policies come in, the decision goes out.
 *
 * - ON DELETE NO ACTION / RESTRICT: deleting a still-referenced row fails. Each such referencing table must
 *   be the table of a child policy (named in the policy's `children`, run first); otherwise the run refuses.
 * - ON DELETE CASCADE / SET NULL / SET DEFAULT: PostgreSQL changes the children itself; allowed, reported.
 * - A self-reference with NO ACTION / RESTRICT cannot be covered by a child policy: refused.
 */

export type OnDelete = 'no action' | 'restrict' | 'cascade' | 'set null' | 'set default';

/** One foreign key constraint that references the purged table. */
export interface ForeignKeyReference {
  readonly constraint: string;
  /** Quoted "schema"."table" of the referencing table. */
  readonly referencingTable: string;
  readonly referencingOid: string;
  readonly onDelete: OnDelete;
}

/** A child policy with its table resolved from the catalog. */
export interface ResolvedChildPolicy {
  readonly name: string;
  readonly tableOid: string;
}

export interface ForeignKeyDecision {
  /** References no child policy covers: the run must refuse. */
  readonly blocking: ForeignKeyReference[];
  /** NO ACTION / RESTRICT references whose table a child policy purges first. */
  readonly covered: Array<ForeignKeyReference & { readonly childPolicy: string }>;
  /** CASCADE / SET NULL / SET DEFAULT: PostgreSQL changes these children as the parent rows go. */
  readonly changedByDatabase: ForeignKeyReference[];
}

/** pg_constraint.confdeltype → the ON DELETE action. */
export function onDeleteOf(code: string): OnDelete {
  switch (code) {
    case 'a':
      return 'no action';
    case 'r':
      return 'restrict';
    case 'c':
      return 'cascade';
    case 'n':
      return 'set null';
    case 'd':
      return 'set default';
    default:
      throw new Error(`unknown pg_constraint.confdeltype ${JSON.stringify(code)}`);
  }
}

export function decideForeignKeys(
  tableOid: string,
  references: readonly ForeignKeyReference[],
  children: readonly ResolvedChildPolicy[],
): ForeignKeyDecision {
  const blocking: ForeignKeyReference[] = [];
  const covered: Array<ForeignKeyReference & { childPolicy: string }> = [];
  const changedByDatabase: ForeignKeyReference[] = [];
  for (const reference of references) {
    if (reference.onDelete !== 'no action' && reference.onDelete !== 'restrict') {
      changedByDatabase.push(reference);
      continue;
    }
    const child =
      reference.referencingOid === tableOid
        ? undefined
        : children.find((candidate) => candidate.tableOid === reference.referencingOid);
    if (child) covered.push({ ...reference, childPolicy: child.name });
    else blocking.push(reference);
  }
  return { blocking, covered, changedByDatabase };
}

/** The refusal message: which tables, which constraints, and what to do about it. */
export function describeBlockingReferences(
  table: string,
  tableOid: string,
  blocking: readonly ForeignKeyReference[],
): string {
  const list = blocking
    .map((r) => {
      const self = r.referencingOid === tableOid ? ', a self-reference no child policy can cover' : '';
      return `${r.referencingTable} (constraint ${r.constraint}, ON DELETE ${r.onDelete.toUpperCase()}${self})`;
    })
    .join(', ');
  return (
    `refusing to purge ${table}: it is referenced by ${list}. ` +
    'Name a purge policy on each referencing table in "children" (they run first), ' +
    'or change the constraints to ON DELETE CASCADE / SET NULL. Nothing was deleted.'
  );
}

/**
 * An archive refuses references that make PostgreSQL delete or change other rows as the archived rows go
 * (ON DELETE CASCADE / SET NULL / SET DEFAULT, self-references included): those rows would change in the
 * chunk's transaction without being in any archive. NO ACTION / RESTRICT are safe: a chunk reaching a
 * still-referenced row fails and rolls back.
 */
export function describeArchiveChangedChildren(
  table: string,
  changed: readonly ForeignKeyReference[],
): string {
  const list = changed
    .map((r) => `${r.referencingTable} (constraint ${r.constraint}, ON DELETE ${r.onDelete.toUpperCase()})`)
    .join(', ');
  return (
    `refusing to archive ${table}: deleting its rows would make PostgreSQL delete or change rows of ${list}, ` +
    'which no archive would hold. Archive those tables first with their own policies and make the constraints ' +
    'ON DELETE NO ACTION (a chunk then stops at a still-referenced row), or purge instead. Nothing was changed.'
  );
}
