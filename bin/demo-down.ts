/**
 * `npm run demo:down`: stops the PostgreSQL and S3 server that `npm run demo:up` (`npm start -- --keep`) left
 * running and removes their state directory (`.demo/`, or $PG_LIFECYCLE_DEMO_DIR).
 * `npm run demo:down -- --persist` stops them but keeps the data for `npm run demo:up -- --persist`.
 */
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { persist: { type: 'boolean', default: false } } });
const { downKeptServices } = await import('./local/kept-services.ts');
try {
  await downKeptServices({ persist: values.persist, say: (text) => process.stdout.write(`${text}\n`) });
} catch (error) {
  process.stderr.write(`demo:down: ${(error as Error).message}\n`);
  process.exitCode = 1;
}
