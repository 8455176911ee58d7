#!/usr/bin/env -S node --import tsx
/**
 * CLI entry. Powertools (used by the handlers that local runs execute) is configured before anything
 * imports it: its logs and EMF metrics belong to Lambda, not to a terminal whose stdout may be `--json`.
 */
process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
process.env.POWERTOOLS_TRACE_ENABLED ??= 'false';

const { main } = await import('./cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
