/**
 * CDK app entry (`cdk synth`, `cdk deploy`). The config file comes from `LIFECYCLE_CONFIG`, else the
 * context key `config` (`cdk synth -c config=path`), else `lifecycle.config.json`.
 */
import { App } from 'aws-cdk-lib';
import { buildApp } from '../lib/app.ts';
import { ConfigError, loadConfigFile } from '../lib/config-file.ts';

// A probe app only reads the CLI context; autoSynth off so it never writes into the cloud assembly.
const contextConfig = new App({ autoSynth: false }).node.tryGetContext('config') as string | undefined;
const configPath = process.env.LIFECYCLE_CONFIG ?? contextConfig ?? 'lifecycle.config.json';

try {
  const { app } = buildApp(loadConfigFile(configPath));
  app.synth();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(`Invalid pg-lifecycle configuration:\n${error.message}`);
  process.exitCode = 1;
}
