/**
 * Archive objects in S3 Glacier Flexible Retrieval or Deep Archive cannot be read until S3 restores a
 * temporary copy (hours). Before anything is loaded, restore-archive asks S3 about every object it is to read
 * (HEAD: storage class, `x-amz-restore`), estimates what a retrieval costs and takes, requests the restores
 * (a restore already in progress is not an error) and reports them as pending; a later call finds the copies
 * available and reads them like any other object. Glacier Instant Retrieval, Standard-IA and Standard are read
 * directly.
 */
import {
  HeadObjectCommand,
  RestoreObjectCommand,
  type S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { isColdStorageClass, mapS3Error } from '../../adapters/archive-store.ts';
import { RestoreArchiveInputError } from './errors.ts';
import type { ListedObject } from './ledger.ts';

export const RETRIEVAL_TIERS = ['Standard', 'Bulk', 'Expedited'] as const;
export type RetrievalTier = (typeof RETRIEVAL_TIERS)[number];

/** The tier cannot serve the objects (Expedited from Deep Archive). */
export class RetrievalTierError extends RestoreArchiveInputError {
  override readonly name = 'RetrievalTierError';
}

/**
 * Retrieval prices assumed for the estimate: AWS's published list prices for us-east-1 as known on
 * 2026-12-01 (https://aws.amazon.com/s3/pricing/, "Requests & data retrievals"). Other regions and later
 * price changes differ: the figure is an estimate, never a quote. The restored copy is also billed as
 * Standard storage for the days it is kept (not included).
 */
export const RETRIEVAL_PRICES: Readonly<
  Record<
    'GLACIER' | 'DEEP_ARCHIVE',
    Partial<Record<RetrievalTier, { perGb: number; per1000Requests: number; hours: string }>>
  >
> = {
  GLACIER: {
    Expedited: { perGb: 0.03, per1000Requests: 10, hours: '1-5 minutes' },
    Standard: { perGb: 0.01, per1000Requests: 0.05, hours: '3-5 hours' },
    Bulk: { perGb: 0, per1000Requests: 0.025, hours: '5-12 hours' },
  },
  DEEP_ARCHIVE: {
    Standard: { perGb: 0.02, per1000Requests: 0.1, hours: 'within 12 hours' },
    Bulk: { perGb: 0.0025, per1000Requests: 0.025, hours: 'within 48 hours' },
  },
};
export const RETRIEVAL_PRICES_AS_OF = '2026-12-01 (us-east-1 list prices)';

/** What S3 says about an object to be read. */
export interface ObjectState {
  readonly key: string;
  readonly bytes: number;
  readonly storageClass: string;
  /** readable: GetObject works now; cold: a restore must be requested; restoring: one is under way. */
  readonly state: 'readable' | 'cold' | 'restoring';
}

/** The retrieval of the cold objects, as planned and requested. */
export interface PendingRetrieval {
  readonly tier: RetrievalTier;
  readonly objects: number;
  readonly bytes: number;
  /** Restore requests sent now (objects already being restored are not asked again). */
  readonly requested: number;
  readonly alreadyInProgress: number;
  readonly estimatedCostUsd: number;
  readonly estimatedTime: string;
  readonly pricesAsOf: string;
  readonly keys: string[];
}

/** `x-amz-restore`: `ongoing-request="true"` while S3 restores, `"false", expiry-date=…` once a copy exists. */
function restoreState(restore: string | undefined): 'none' | 'ongoing' | 'done' {
  if (!restore) return 'none';
  return /ongoing-request="true"/.test(restore) ? 'ongoing' : 'done';
}

export async function readObjectStates(
  s3: S3Client,
  objects: ReadonlyArray<Pick<ListedObject, 'bucket' | 'key' | 'bytes'>>,
): Promise<ObjectState[]> {
  const states: ObjectState[] = [];
  for (const object of objects) {
    let head: { StorageClass?: string | undefined; Restore?: string | undefined };
    try {
      head = await s3.send(new HeadObjectCommand({ Bucket: object.bucket, Key: object.key }));
    } catch (error) {
      // A missing object fails later, when it is read, with the ledger's words.
      if (error instanceof S3ServiceException && error.$metadata.httpStatusCode === 404) head = {};
      else throw mapS3Error(error, `HEAD ${object.key}`);
    }
    const storageClass = head.StorageClass ?? 'STANDARD';
    const restore = restoreState(head.Restore);
    const state = !isColdStorageClass(storageClass)
      ? 'readable'
      : restore === 'done'
        ? 'readable'
        : restore === 'ongoing'
          ? 'restoring'
          : 'cold';
    states.push({ key: object.key, bytes: object.bytes, storageClass, state });
  }
  return states;
}

/** Pure: the cost and time of retrieving `states`' cold and restoring objects with `tier`. */
export function estimateRetrieval(
  states: readonly ObjectState[],
  tier: RetrievalTier,
): Omit<PendingRetrieval, 'requested' | 'alreadyInProgress'> {
  const waiting = states.filter((s) => s.state !== 'readable');
  let cost = 0;
  const times = new Set<string>();
  for (const storageClass of ['GLACIER', 'DEEP_ARCHIVE'] as const) {
    const of = waiting.filter((s) => s.storageClass === storageClass);
    if (of.length === 0) continue;
    const price = RETRIEVAL_PRICES[storageClass][tier];
    if (!price) {
      throw new RetrievalTierError(
        `${of.length} object(s) are in ${storageClass}, which has no ${tier} retrieval; use --tier Standard or Bulk`,
      );
    }
    const gb = of.reduce((total, s) => total + s.bytes, 0) / 1e9;
    cost += gb * price.perGb + (of.length / 1000) * price.per1000Requests;
    times.add(`${storageClass}: ${price.hours}`);
  }
  return {
    tier,
    objects: waiting.length,
    bytes: waiting.reduce((total, s) => total + s.bytes, 0),
    estimatedCostUsd: Math.round(cost * 10_000) / 10_000,
    estimatedTime: [...times].join('; '),
    pricesAsOf: RETRIEVAL_PRICES_AS_OF,
    keys: waiting.map((s) => s.key),
  };
}

/**
 * Requests a temporary copy (`days` days) of every cold object. 409 RestoreAlreadyInProgress (another call
 * asked first) is counted, not an error; an object S3 reports restored already needs nothing.
 */
export async function requestRestores(
  s3: S3Client,
  bucket: string,
  states: readonly ObjectState[],
  tier: RetrievalTier,
  days: number,
): Promise<{ requested: number; alreadyInProgress: number }> {
  let requested = 0;
  let alreadyInProgress = states.filter((s) => s.state === 'restoring').length;
  for (const state of states.filter((s) => s.state === 'cold')) {
    try {
      await s3.send(
        new RestoreObjectCommand({
          Bucket: bucket,
          Key: state.key,
          RestoreRequest: { Days: days, GlacierJobParameters: { Tier: tier } },
        }),
      );
      requested++;
    } catch (error) {
      if (error instanceof S3ServiceException && error.name === 'RestoreAlreadyInProgress') {
        alreadyInProgress++;
        continue;
      }
      throw mapS3Error(error, `RestoreObject ${state.key}`);
    }
  }
  return { requested, alreadyInProgress };
}
