/**
 * The resident memory of the chunk step's deployed form at rest: functions/chunk.ts bundled by esbuild with the
 * Lambda functions' settings (lib/constructs/lifecycle-function.ts: ESM, `module` before `main`, minified, names
 * kept, an external source map, the AWS SDK inside, pg-native left out), imported by a fresh `node` with source
 * maps on and garbage-collected.
 *
 * Why: the memory benchmark's child runs the whole policy through tsx and the local interpreter, whose modules
 * are most of its floor (≈ 190 MiB); a Lambda holds one handler's bundle. The bundle's floor plus what the run
 * added on top of the child's floor estimates the deployed step's peak (an estimate, and reported as one).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const LOAD_AND_MEASURE = `
await import('./index.mjs');
for (let i = 0; i < 3; i++) { globalThis.gc(); await new Promise((resolve) => setTimeout(resolve, 50)); }
process.stdout.write(JSON.stringify({ rss: process.memoryUsage().rss }));
`;

export async function measureHandlerFloor(): Promise<{ bundle_bytes: number; floor_bytes: number }> {
  const { build } = await import('esbuild');
  const dir = mkdtempSync(join(tmpdir(), 'bench-handler-'));
  try {
    const outfile = join(dir, 'index.mjs');
    await build({
      entryPoints: [fileURLToPath(new URL('../../functions/chunk.ts', import.meta.url))],
      outfile,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: `node${process.versions.node.split('.')[0]}`,
      // The construct's target is node24 (the Lambda runtime); here, the Node that loads the bundle.
      mainFields: ['module', 'main'],
      minify: true,
      keepNames: true,
      sourcemap: true,
      sourcesContent: false,
      external: ['pg-native'],
      banner: {
        js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
      },
      logLevel: 'error',
    });
    writeFileSync(join(dir, 'measure.mjs'), LOAD_AND_MEASURE);
    const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', 'measure.mjs'], {
      cwd: dir,
      // As the construct's environment: source maps on (NODE_OPTIONS=--enable-source-maps).
      env: {
        ...process.env,
        AWS_REGION: process.env.AWS_REGION ?? 'us-east-1',
        NODE_OPTIONS: '--enable-source-maps',
      },
    });
    const { rss } = JSON.parse(stdout) as { rss: number };
    return { bundle_bytes: statSync(outfile).size, floor_bytes: rss };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
