/**
 * Child-process entry for the local S3 server, so that its request handling does not run on the benchmark's
 * JavaScript thread (S3 is remote in production). Prints `{"endpoint": ...}` on one line, then serves until
 * SIGTERM/SIGINT or until its stdin closes (the parent exited).
 */
import { startLocalS3 } from '../../bin/local/services.ts';

const server = await startLocalS3();
process.stdout.write(`${JSON.stringify({ endpoint: server.endpoint, pid: process.pid })}\n`);

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  void server.stop().finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();
