/**
 * What a parsed manifest must also agree with before anything trusts it (pure): its own place in the bucket
 * (a manifest copied or edited to name another backup, or parts outside its prefix, would restore someone
 * else's data), and its checksums with its row counts. BackupManifestSchema already checks that rows and bytes
 * add up, that no part or table is listed twice, and that it finished after it started.
 */
import { parseContentChecksum } from '../content-checksum.ts';
import { type BackupManifest, backupKeys } from '../manifest.ts';
import { PART_EXTENSIONS } from '../part-compression.ts';

/** Problems of `manifest` read from `backup/<policy>/<backupId>/manifest.json`; empty when it fits. */
export function manifestPlacementProblems(
  manifest: BackupManifest,
  policy: string,
  backupId: string,
): string[] {
  const problems: string[] = [];
  if (manifest.policy !== policy) problems.push(`it names policy "${manifest.policy}", not "${policy}"`);
  if (manifest.backupId !== backupId) problems.push(`it names backup ${manifest.backupId}, not ${backupId}`);
  const keys = backupKeys(policy, backupId);
  const ddlKeys: Array<[string, string]> = [
    ['schemaKey', manifest.schemaKey],
    ['postDataKey', manifest.postDataKey],
  ];
  if (manifest.relocatable) {
    ddlKeys.push(['relocatable.schemaKey', manifest.relocatable.schemaKey]);
    ddlKeys.push(['relocatable.postDataKey', manifest.relocatable.postDataKey]);
  }
  for (const [field, key] of ddlKeys) {
    if (!key.startsWith(keys.base)) problems.push(`${field} ${key} lies outside ${keys.base}`);
  }
  const extension = `.sql.${PART_EXTENSIONS[manifest.compression.codec]}`;
  for (const table of manifest.tables) {
    for (const part of table.parts) {
      if (!part.key.startsWith(`${keys.base}data/`))
        problems.push(`part ${part.key} of ${table.table} lies outside ${keys.base}data/`);
      else if (!part.key.endsWith(extension))
        problems.push(`part ${part.key} of ${table.table} is not a ${manifest.compression.codec} part`);
    }
    const checksumRows = parseContentChecksum(table.contentChecksum).rows;
    if (checksumRows !== String(table.rows)) {
      problems.push(
        `${table.table}: its content checksum counts ${checksumRows} rows, the table ${table.rows}`,
      );
    }
  }
  return problems;
}
