/** Creates or updates an archive policy's Glue table (the start step calls it when GLUE_DATABASE is set). */
import {
  CreateTableCommand,
  EntityNotFoundException,
  type GlueClient,
  UpdateTableCommand,
} from '@aws-sdk/client-glue';
import { TransientServiceError } from '../core/errors.ts';
import type { GlueTableInput } from '../core/glue-table.ts';

/** Throttling, 5xx and network errors are worth a retry; anything else (access denied, bad input) is not. */
function mapServiceError(error: unknown, what: string): unknown {
  const meta =
    (error as { $metadata?: { httpStatusCode?: number }; $retryable?: unknown; name?: string }) ?? {};
  const status = meta.$metadata?.httpStatusCode ?? 0;
  if (
    meta.$retryable ||
    status >= 500 ||
    status === 429 ||
    meta.name === 'ThrottlingException' ||
    status === 0
  ) {
    return new TransientServiceError(`${what}: ${(error as Error).message}`, { cause: error });
  }
  return error;
}

export interface TableCatalog {
  upsertTable(table: GlueTableInput): Promise<void>;
}

export class GlueTableCatalog implements TableCatalog {
  constructor(
    private readonly client: GlueClient,
    private readonly databaseName: string,
  ) {}

  async upsertTable(table: GlueTableInput): Promise<void> {
    try {
      try {
        await this.client.send(
          new UpdateTableCommand({ DatabaseName: this.databaseName, TableInput: table }),
        );
      } catch (error) {
        if (!(error instanceof EntityNotFoundException)) throw error;
        await this.client.send(
          new CreateTableCommand({ DatabaseName: this.databaseName, TableInput: table }),
        );
      }
    } catch (error) {
      throw mapServiceError(error, `Glue table ${this.databaseName}.${table.Name}`);
    }
  }
}
