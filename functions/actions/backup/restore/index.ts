/**
 * The read side of backups: list them, verify one, restore one, drill the latest. Each reads what the backup
 * action wrote under `backup/<policy>/<backupId>/` (manifest.json last) and trusts nothing it has not checked.
 */

export { BACKUP_ID_PATTERN } from './backup-store.ts';
export type { BackupProblem, BackupProblemKind } from './check-parts.ts';
export { type DrillResult, type RunDrillProps, runDrill } from './drill.ts';
export { type DrillLedger, type DrillTable, restoreDrillsLedger } from './drill-record.ts';
export * from './errors.ts';
export { type BackupSummary, backupExpiry, backupIdTime, findBackup, listBackups } from './list-backups.ts';
export {
  type RestoreBackupProps,
  type RestoredTable,
  type RestoreResult,
  restoreBackup,
} from './restore-backup.ts';
export {
  checkRestoreRequest,
  IF_EXISTS_CHOICES,
  type IfExists,
  RESTORE_MODES,
  type RestoreMode,
} from './restore-plan.ts';
export {
  type BackupPartsLedger,
  type BackupVerification,
  type VerifyBackupOptions,
  verifyBackup,
} from './verify-backup.ts';
