/**
 * The Glue table of an archive policy, named by the same rule where the start step creates it
 * (functions/core/glue-table.ts) and where the stack grants access to it (lib/constructs/policy-grants.ts).
 */

/** Glue table names: lowercase letters, digits, underscore (policy names have no underscores, so no clash). */
export function glueTableName(policyName: string): string {
  return policyName.replaceAll('-', '_');
}
