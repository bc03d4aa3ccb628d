/** Free TCP ports for processes that must keep their port across restarts. */
import { createServer } from 'node:net';

/**
 * A port on 127.0.0.1 that was free a moment ago. Prefer `listenPort=0` and
 * reading the bound port from a boot line; use this only when a process must
 * come back on the same port, or a port must be known before it starts.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}
