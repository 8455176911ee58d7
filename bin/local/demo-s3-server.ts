/**
 * Child-process entry of the kept demo's S3 server (bin/local/kept-s3.ts starts it detached):
 * `demo-s3-server.ts --port N [--storage DIR]`. With a storage directory it loads the snapshot there before
 * it reports ready and writes a new one when SIGTERM stops it. Reports `{ ready, endpoint }` (or `{ error }`)
 * over IPC, then serves until SIGTERM or SIGINT.
 */
import { parseArgs } from 'node:util';
import { loadS3Snapshot, localS3Client, saveS3Snapshot } from './s3-snapshot.ts';
import { startLocalS3 } from './services.ts';

const { values } = parseArgs({
  options: { port: { type: 'string' }, storage: { type: 'string' } },
});
const log = (text: string) => process.stdout.write(`${new Date().toISOString()} ${text}\n`);

try {
  const server = await startLocalS3({ port: Number(values.port ?? 0) });
  const s3 = localS3Client(server.endpoint);
  const storage = values.storage;
  if (storage) log(`loaded ${await loadS3Snapshot(s3, storage)} objects from ${storage}`);
  let stopping = false;
  const stop = (name: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log(`${name}: stopping`);
    void (async () => {
      try {
        if (storage) log(`saved ${await saveS3Snapshot(s3, storage)} objects to ${storage}`);
      } catch (error) {
        log(`could not save the objects: ${String(error)}`);
        process.exitCode = 1;
      }
      s3.destroy();
      await server.stop();
      process.exit();
    })();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  log(`serving ${server.endpoint} (pid ${process.pid})`);
  process.send?.({ ready: true, endpoint: server.endpoint });
} catch (error) {
  log(`could not start: ${String(error)}`);
  process.send?.({ error: (error as NodeJS.ErrnoException).code ?? String(error) });
  process.exitCode = 1;
  process.disconnect?.();
}
