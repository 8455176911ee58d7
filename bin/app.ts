/**
 * CDK app entry (`cdk synth`, `cdk deploy`). The config file comes from `LIFECYCLE_CONFIG`, else the
 * context key `config` (`cdk synth -c config=path`), else `lifecycle.config.json`.
 */
import { App } from 'aws-cdk-lib';
import { buildApp } from '../lib/app.ts';
import { ConfigError, loadConfigFile } from '../lib/config-file.ts';

// A probe app only reads the CLI context; autoSynth off so it never writes into the cloud assembly.
const probe = new App({ autoSynth: false });
const contextConfig = probe.node.tryGetContext('config') as string | undefined;
const configPath = process.env.LIFECYCLE_CONFIG ?? contextConfig ?? 'lifecycle.config.json';
// `-c stackName=…`: a second stack (with a second config) beside the first, e.g. past the policies one holds.
const stackName = probe.node.tryGetContext('stackName') as string | undefined;

try {
  const config = loadConfigFile(configPath);
  // The schema accepts configs local runs take but a deployment does not (no database, policies past what one
  // stack holds): buildApp refuses them with deploymentIssues, naming the file.
  const { app } = buildApp(config, { stackName, configSource: configPath });
  app.synth();
} catch (error) {
  // A config mistake is the user's to fix: say what and where, without a stack trace.
  if (!(error instanceof ConfigError)) throw error;
  const [only, ...more] = error.message.split('\n');
  console.error(
    more.length === 0
      ? `Invalid pg-lifecycle configuration: ${only}`
      : `Invalid pg-lifecycle configuration:\n${error.message}`,
  );
  process.exitCode = 1;
}
