/**
 * What a maintain dry run reports per table and index (`RunPlan.maintenance`): the figures it decided on and
 * what a run started now would do, with the reason. Pure zod, shared by the plan payload and the module.
 */
import { z } from 'zod';

export const MaintenanceStatementSchema = z.enum(['analyze', 'vacuum', 'reindex', 'skip', 'none']);

/** How a bloat figure was read: the extension's exact scan, or the estimate from the statistics. */
export const BloatMethodSchema = z.enum(['pgstattuple', 'statistics']);

export const MaintenancePlanItemSchema = z.object({
  /** Quoted "schema"."table". */
  table: z.string(),
  /** Quoted index name (same schema as its table), for index items. */
  index: z.string().optional(),
  /** What a run would do now (`none`: nothing is due; `skip`: cannot or must not, see reason). */
  statement: MaintenanceStatementSchema,
  reason: z.string(),
  method: BloatMethodSchema.optional(),
  bloatPercent: z.number().min(0).max(100).optional(),
  bloatBytes: z.int().min(0).optional(),
  sizeBytes: z.int().min(0),
  deadTuples: z.int().min(0).optional(),
  /** Last ANALYZE (manual or autovacuum's), ISO; null when never (tables only). */
  lastAnalyzed: z.string().nullable().optional(),
});

export type MaintenanceStatement = z.output<typeof MaintenanceStatementSchema>;
export type BloatMethod = z.output<typeof BloatMethodSchema>;
export type MaintenancePlanItem = z.output<typeof MaintenancePlanItemSchema>;
