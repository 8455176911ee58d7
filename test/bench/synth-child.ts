/**
 * Synthesizes the state machine in a child process: `synthesizeInChild(config)` sends the config on stdin and
 * reads the definition from stdout. aws-cdk-lib adds some 70 MB to the process that loads it and keeps them;
 * the backup benchmark measures its own process's peak RSS, which the synth must not inflate (a Lambda never
 * loads CDK).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { AslDefinition } from '../../functions/local-runner/synthesize.ts';

/** `config`: the config as written (the child parses it with LifecycleConfigSchema). */
export async function synthesizeInChild(config: unknown): Promise<AslDefinition> {
  const entry = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, ['--import', 'tsx', entry, '--child'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const output: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => output.push(chunk));
  child.stdin.end(JSON.stringify(config));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`state machine synth child exited with ${String(code)}`);
  return JSON.parse(Buffer.concat(output).toString('utf8')) as AslDefinition;
}

if (process.argv.includes('--child')) {
  const { synthesizeDefinition } = await import('../../functions/local-runner/synthesize.ts');
  const { LifecycleConfigSchema } = await import('../../lib/contracts/config.ts');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const config = LifecycleConfigSchema.parse(JSON.parse(Buffer.concat(chunks).toString('utf8')));
  process.stdout.write(JSON.stringify(await synthesizeDefinition(config)));
}
