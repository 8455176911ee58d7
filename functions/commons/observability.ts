/**
 * Powertools Logger, Metrics (EMF) and Tracer, one instance each per Lambda container.
 * Logs carry counts, timings and key ranges; never row contents.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
import type { ChunkMetrics, StepLogger } from '../run/dependencies.ts';

export const logger = new Logger({ serviceName: 'pg-lifecycle' });
// Metrics' own warnings go through the Logger, so they respect its level (SILENT in local runs).
export const metrics = new Metrics({ namespace: 'PgLifecycle', serviceName: 'pg-lifecycle', logger });
export const tracer = new Tracer({ serviceName: 'pg-lifecycle' });

export const stepLogger: StepLogger = {
  info: (message, fields) => logger.info(message, fields ?? {}),
  warn: (message, fields) => logger.warn(message, fields ?? {}),
  error: (message, fields) => logger.error(message, fields ?? {}),
};

export const chunkMetrics: ChunkMetrics = {
  recordChunk(sample) {
    metrics.addMetric('RowsProcessed', MetricUnit.Count, sample.rows);
    metrics.addMetric('BytesWritten', MetricUnit.Bytes, sample.bytes);
    metrics.addMetric('ObjectsWritten', MetricUnit.Count, sample.objects);
    metrics.addMetric('ChunkDuration', MetricUnit.Milliseconds, sample.durationMs);
  },
};
