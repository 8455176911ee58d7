/**
 * `npm start`: the whole product on one machine. Starts an embedded PostgreSQL and a local S3 server,
 * seeds the AI-camera schema, runs every archive and purge policy of lifecycle.config.json through the
 * synthesized state machine (real handlers), verifies each run independently and prints a report.
 * `npm start -- --json` prints the report as JSON. Exit 1 when any verification fails.
 * `npm start -- --keep` (`npm run demo:up`) leaves PostgreSQL and the S3 server running for the CLI
 * (bin/local/kept-services.ts; `--persist` keeps their data across `npm run demo:down -- --persist`).
 */
process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
process.env.POWERTOOLS_TRACE_ENABLED ??= 'false';
// The demo runs on the Node 20 of a fresh machine; the SDK's Node-22 notice is not news there.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const { runDemo } = await import('./local/demo-run.ts');
process.exitCode = await runDemo(process.argv.slice(2));
