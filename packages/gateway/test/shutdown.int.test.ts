import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { register, sleep, startGateway, startUpstream, unique } from './helpers.js';

/** Resolves to the error code of a TCP connection attempt, or 'connected'. */
function tryConnect(url: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port) });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
  });
}

describe('gateway graceful stop', () => {
  it('lets a request in flight finish, then refuses new connections', async () => {
    const service = unique('posts');
    const upstream = await startUpstream(async (_request, response) => {
      await sleep(300);
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end('{"finished":true}');
    });
    const gw = await startGateway({ routes: [{ methods: ['GET'], path: '/v1/posts', service, auth: 'none' }], drainTimeoutMs: 10_000 });
    await register(gw.registry, service, upstream.url);

    const inFlight = fetch(`${gw.url}/v1/posts`);
    while (upstream.received.length === 0) await sleep(5);
    const stopping = performance.now();
    const stopped = gw.stop();

    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ finished: true });
    await stopped;
    // Done once nothing is in flight, not at the drain bound: the keep-alive connection the
    // caller still holds does not keep the gateway up.
    expect(performance.now() - stopping).toBeLessThan(5000);

    expect(await tryConnect(gw.url)).toBe('ECONNREFUSED');
  });

  it('cuts a request still in flight when the drain time is up, and cancels its upstream call', async () => {
    const service = unique('posts');
    let upstreamCallCancelled = false;
    const upstream = await startUpstream(async (_request, response) => {
      response.once('close', () => (upstreamCallCancelled = !response.writableFinished));
      await sleep(5000);
      if (!response.destroyed) response.end('{}');
    });
    const gw = await startGateway({ routes: [{ methods: ['GET'], path: '/v1/posts', service, auth: 'none' }], drainTimeoutMs: 200 });
    await register(gw.registry, service, upstream.url);

    const inFlight = fetch(`${gw.url}/v1/posts`).then(
      (res) => res.status,
      (err: Error & { cause?: { code?: string } }) => err.cause?.code ?? err.name,
    );
    while (upstream.received.length === 0) await sleep(5);
    const started = performance.now();
    await gw.stop();

    expect(performance.now() - started).toBeLessThan(2000);
    expect(await inFlight).toBe('UND_ERR_SOCKET');
    await expect.poll(() => upstreamCallCancelled).toBe(true);
  });
});
