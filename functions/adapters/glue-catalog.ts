/** Creates or updates an archive policy's Glue table (the start step calls it when GLUE_DATABASE is set). */
import {
  CreateTableCommand,
  EntityNotFoundException,
  type GlueClient,
  UpdateTableCommand,
} from '@aws-sdk/client-glue';
import { mapServiceError } from '../commons/aws-service-errors.ts';
import type { GlueTableInput } from '../core/glue-table.ts';

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
