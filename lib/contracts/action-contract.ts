/**
 * What the CDK app, `validate` and the CLI need to know about an action, pure (zod, no I/O). Each action
 * writes its own in `functions/actions/<action>/contract.ts`; `lib/contracts/policy.ts` registers them. The
 * runtime half (checks, work source, chunk, partitions, finish) is the action's module
 * (`functions/actions/<action>/index.ts`, registered in `functions/actions/registry.ts`).
 */
import type { RdsSnapshotOptions } from '../../functions/actions/backup/rds-snapshot/contract.ts';

/** The fields of another policy a contract may look at in cross-policy rules. */
export interface PolicyView {
  readonly name: string;
  readonly action: string;
  /** Absent for a policy over many tables (backup). */
  readonly table?: string;
  readonly enabled: boolean;
  readonly retention?: string;
  readonly filter?: string | undefined;
}

/** One problem found in a policy, at a path below the policy (`['children', 0]`). */
export interface ConfigProblem {
  readonly path: ReadonlyArray<string | number>;
  readonly message: string;
}

/** A move of a policy's objects to a colder storage class, days after upload. */
export interface StorageTransition {
  readonly storageClass: 'STANDARD_IA' | 'GLACIER_IR' | 'DEEP_ARCHIVE';
  readonly afterDays: number;
}

/** Storage-class schedule of one policy's objects (days after upload): transitions, then expiry. */
export interface StorageTiers {
  readonly transitions: readonly StorageTransition[];
  readonly expireAfterDays?: number | undefined;
}

/** What a policy keeps in the bucket: the stack gives it a prefix, a lifecycle rule and grants bounded to it. */
export interface PolicyStorage {
  /** Key prefix of the policy's objects, ending in `/`. */
  readonly prefix: string;
  readonly tiers: StorageTiers;
  /** The policy's objects are locked with S3 Object Lock once listed (the bucket needs Object Lock). */
  readonly objectLock: boolean;
  /** The policy keeps a Glue table over its objects (the Start function may create and update it). */
  readonly glueTable: boolean;
  /**
   * Finish and RecordFailure also read, write and list under the prefix (a backup's post-data and manifest,
   * and the removal of a failed backup's objects); otherwise they only delete orphans and lock objects.
   */
  readonly finishWrites?: boolean;
}

export interface ActionContract<P extends { readonly name: string; readonly action: string }> {
  readonly action: P['action'];
  /**
   * What a run does with the rows it selects: `copied-then-deleted` rows are in the bucket before they leave
   * the table (archive); `deleted` rows are gone (purge); `kept` rows stay (backup, anonymize). The config
   * refuses a policy that deletes rows before another policy of the same table has copied them.
   */
  readonly rowFate: 'copied-then-deleted' | 'deleted' | 'kept';
  /** What the policy keeps in the bucket, or undefined when its functions get no bucket at all. */
  storage(policy: P): PolicyStorage | undefined;
  /** Problems of this policy on its own or against the others (`children` naming a policy that does not exist). */
  configProblems?(policy: P, policies: readonly PolicyView[]): ConfigProblem[];
  /**
   * Facts from the rest of the config the run needs and cannot read itself (Start sees only its own policy):
   * purge resolves `children` to their tables. `policyNamed` throws for a name the config does not have.
   */
  executionExtras?(
    policy: P,
    policyNamed: (name: string) => PolicyView,
  ): { children?: Array<{ name: string; table: string }> };
  /**
   * A manual RDS/Aurora snapshot the policy's execution takes after a successful Finish (backup): the stack
   * gives the machine its snapshot stage and a snapshot function scoped to this database and name prefix.
   */
  rdsSnapshot?(policy: P): RdsSnapshotOptions | undefined;
  /**
   * A scheduled restore drill of the policy's latest backup: its own state machine, function and alarm.
   * `partMiB` bounds what the drill downloads at once (its /tmp is sized from it).
   */
  restoreDrill?(
    policy: P,
  ): { readonly schedule: string; readonly timezone: string; readonly partMiB: number } | undefined;
  /**
   * Whether the policy's runs read the anonymize hash key (keyed pseudonyms, subjects' keyed hashes): the stack
   * then lets its Start and Chunk functions read the config's hash key secret.
   */
  usesHashKey?(policy: P): boolean;
  /**
   * What the policy does to its table's rows, for the config rule against two policies doing the same to the
   * same rows (a soft delete and the hard purge of its column are two different works). Absent: its action.
   */
  workOnRows?(policy: P): string;
  /** The tables a policy without one `table` works on, for descriptions and logs (a backup's patterns). */
  tablesOf?(policy: P): string;
  /**
   * Tables whose archive copies (the objects of the archive policies of those tables) the policy's runs read,
   * rewrite and delete (subjects: export and erasure): the stack grants its functions those prefixes.
   */
  rewritesArchivesOf?(policy: P): readonly string[];
  /**
   * Objects outside the stack's bucket the policy's runs read (an import's CSV or Parquet source): its Start and
   * Chunk functions may GET exactly these keys, nothing else of those buckets.
   */
  readsObjects?(policy: P): ReadonlyArray<{ readonly bucket: string; readonly key: string }>;
}
