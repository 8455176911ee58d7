/** Network helpers for tests that need a database (or any server) nobody answers on. */
import { createServer } from 'node:net';

/** A TCP port on 127.0.0.1 that nothing listens on (taken from the OS, then closed). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
  if (!address || typeof address === 'string') throw new Error('no port');
  return address.port;
}
