import type { Server } from 'node:http';
import { Server as NetServer } from 'node:net';

export interface DrainOptions {
  /** The server counts as quiet once nothing has been in flight for this long. */
  readonly quietMs?: number;
  /** Longest time to keep accepting connections while waiting for quiet. */
  readonly acceptGraceMs?: number;
  /** When to give up waiting and cut every connection. */
  readonly timeoutMs: number;
}

/**
 * Tracks the requests in flight on an HTTP server, so that it can stop without dropping any.
 *
 * Stopping a server drops requests in two places besides the handlers: connections the
 * kernel has accepted but the process has not (closing the listener resets them), and
 * connections accepted but not yet read (`http.Server#close` counts them as idle and closes
 * them, Node >= 19). So the drain runs in two phases:
 *
 * 1. Keep accepting, answer everything with `Connection: close`, and report not-ready, until
 *    no request has been in flight for `quietMs` (or `acceptGraceMs` has passed).
 * 2. Stop listening, wait for quiet again, close the idle connections. Past `timeoutMs`,
 *    every connection is cut.
 */
export function drainTracker(server: Server) {
  let inFlight = 0;
  let lastActivity = Date.now();
  let draining = false;
  // Ahead of the framework's own listener: it may answer within the same call (a handler
  // that never awaits), and a header set after that throws and would leak the count.
  server.prependListener('request', (_req, res) => {
    inFlight++;
    lastActivity = Date.now();
    res.once('close', () => {
      inFlight--;
      lastActivity = Date.now();
    });
    if (draining && !res.headersSent) res.setHeader('connection', 'close');
  });

  async function quiet(until: number, quietMs: number): Promise<boolean> {
    while (Date.now() < until) {
      if (inFlight === 0 && Date.now() - lastActivity >= quietMs) return true;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return false;
  }

  return {
    get draining() {
      return draining;
    },
    get inFlight() {
      return inFlight;
    },
    /** Resolves true once every request has been answered, false if time ran out first. */
    async drain(options: DrainOptions): Promise<boolean> {
      draining = true;
      const deadline = Date.now() + options.timeoutMs;
      const quietMs = options.quietMs ?? 200;
      await quiet(Math.min(deadline, Date.now() + (options.acceptGraceMs ?? 2000)), quietMs);
      // net.Server's close: stop accepting, without http.Server's closing of idle connections.
      if (server.listening) NetServer.prototype.close.call(server);
      if (await quiet(deadline, quietMs)) {
        server.closeIdleConnections();
        return true;
      }
      server.closeAllConnections();
      return false;
    },
  };
}
