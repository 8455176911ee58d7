#!/usr/bin/env -S node --import tsx
/**
 * CLI entry. Powertools (used by the handlers that local runs execute) is configured before anything
 * imports it: its logs and EMF metrics belong to Lambda, not to a terminal whose stdout may be `--json`.
 */
process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
process.env.POWERTOOLS_TRACE_ENABLED ??= 'false';
// The AWS SDK warns on every process below Node 22 that its releases after January 2027 will need 22. The
// CLI supports Node 20.19+ (package.json engines), so that notice is nothing its user can act on in a run;
// the README states what Node each part needs. Set the variable to anything but 'true' to see it again.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const { main } = await import('./cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
