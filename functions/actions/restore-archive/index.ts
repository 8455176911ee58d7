/** restore-archive: archived rows back from the ledger's Parquet objects (operator-side, never a state machine). */
export {
  estimateRetrieval,
  type PendingRetrieval,
  RETRIEVAL_PRICES,
  RETRIEVAL_PRICES_AS_OF,
  RETRIEVAL_TIERS,
  type RetrievalTier,
  RetrievalTierError,
} from './cold-objects.ts';
export * from './errors.ts';
export { decodeArchiveObject, readArchivedSchema } from './parquet-decode.ts';
export {
  type RestoreArchiveProps,
  type RestoreArchiveResult,
  type RestoredObjectReport,
  restoreArchive,
} from './restore-archive.ts';
