import type { ServerResponse } from 'node:http';
import { createFakeClock } from '@agora/resilience/testing';
import { describe, expect, it } from 'vitest';
import { closedPortUrl, errorCode, makeKeys, register, sample, startGateway, startUpstream, unique, type Received } from './helpers.js';

// The gateway's upstream policies: a circuit breaker per instance, retries of idempotent
// requests on another instance, and /admin/circuits.

/** An upstream whose health the test switches. */
function switchable() {
  const state = { healthy: true };
  const handler = (_request: Received, response: ServerResponse) => {
    response.writeHead(state.healthy ? 200 : 503, { 'content-type': 'application/json' });
    response.end(JSON.stringify(state.healthy ? { ok: true } : { error: { code: 'overloaded', message: 'down for the test' } }));
  };
  return { state, handler };
}

describe('gateway circuit breakers', () => {
  it('opens on a failing upstream, answers 503 upstream_unavailable without calling it, and recovers after it heals', async () => {
    // given an upstream that fails every call, behind a gateway on fake time
    const clock = createFakeClock();
    const service = unique('posts');
    const { state, handler } = switchable();
    const upstream = await startUpstream(handler);
    const gw = await startGateway({
      routes: [{ methods: ['GET'], path: '/v1/posts', service, auth: 'none' }],
      upstream: { clock, breaker: { consecutiveFailures: 3, openMs: 10_000 } },
    });
    await register(gw.registry, service, upstream.url);
    state.healthy = false;

    // when it has failed three times in a row, its 503s passed through as they are
    for (let i = 0; i < 3; i++) expect((await fetch(`${gw.url}/v1/posts`)).status).toBe(503);
    expect(upstream.received).toHaveLength(3);

    // then the circuit is open: refused at the gateway, fast, with a Retry-After
    const refused = await fetch(`${gw.url}/v1/posts`);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('10');
    expect(await errorCode(refused)).toBe('upstream_unavailable');
    expect(upstream.received).toHaveLength(3);
    expect(sample(await gw.metrics.render(), 'circuit_breaker_state', { service })).toBe(2);

    // when the upstream heals and the open period passes, a trial call closes the circuit
    state.healthy = true;
    await clock.advance(10_000);
    for (let i = 0; i < 5; i++) expect((await fetch(`${gw.url}/v1/posts`)).status).toBe(200);
    expect(upstream.received).toHaveLength(8);
    expect(sample(await gw.metrics.render(), 'circuit_breaker_state', { service })).toBe(0);
  });

  it('keeps sending to the healthy instance while the other one is open', async () => {
    const clock = createFakeClock();
    const service = unique('posts');
    const bad = switchable();
    bad.state.healthy = false;
    const sick = await startUpstream(bad.handler);
    const fine = await startUpstream();
    const gw = await startGateway({
      routes: [{ methods: ['POST'], path: '/v1/posts', service, auth: 'none' }],
      upstream: { clock, breaker: { consecutiveFailures: 2, openMs: 10_000 } },
    });
    await register(gw.registry, service, sick.url);
    await register(gw.registry, service, fine.url);
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await fetch(`${gw.url}/v1/posts`, { method: 'POST' })).status);
    // round-robin sends the sick one two calls before its circuit opens; then only the fine one
    expect(sick.received).toHaveLength(2);
    expect(fine.received).toHaveLength(10);
    expect(statuses.filter((s) => s === 503)).toHaveLength(2);
  });
});

describe('gateway retries', () => {
  it('retries an idempotent request on another instance when one refuses connections', async () => {
    const service = unique('users');
    const fine = await startUpstream();
    const gw = await startGateway({ routes: [{ methods: ['GET', 'POST'], path: '/v1/users', service, auth: 'none' }] });
    await register(gw.registry, service, await closedPortUrl());
    await register(gw.registry, service, fine.url);
    for (let i = 0; i < 4; i++) expect((await fetch(`${gw.url}/v1/users`)).status).toBe(200);
    expect(fine.received).toHaveLength(4);
    expect(sample(await gw.metrics.render(), 'retry_attempts_total', { service })).toBeGreaterThanOrEqual(1);
  });

  it('never retries a POST: it may have had its effect', async () => {
    const service = unique('users');
    const fine = await startUpstream();
    const gw = await startGateway({ routes: [{ methods: ['POST'], path: '/v1/users', service, auth: 'none' }] });
    // The dead instance first in turn for the first call.
    await register(gw.registry, service, await closedPortUrl());
    await register(gw.registry, service, fine.url);
    const first = await fetch(`${gw.url}/v1/users`, { method: 'POST', body: 'x' });
    expect(first.status).toBe(503);
    expect(await errorCode(first)).toBe('upstream_unavailable');
    expect(fine.received).toHaveLength(0);
  });
});

describe('/admin/circuits', () => {
  it('lists every instance with its circuit, for admins only', async () => {
    const keys = makeKeys();
    const service = unique('posts');
    const upstream = await startUpstream();
    const gw = await startGateway({ routes: [{ methods: ['GET'], path: '/v1/posts', service, auth: 'none' }], verifier: keys.verifier });
    await register(gw.registry, service, upstream.url);
    expect((await fetch(`${gw.url}/v1/posts`)).status).toBe(200);

    const anonymous = await fetch(`${gw.url}/admin/circuits`);
    expect({ status: anonymous.status, code: await errorCode(anonymous) }).toEqual({ status: 401, code: 'auth_required' });
    const user = (await keys.issuer.issue({ userId: '1', handle: 'ada' })).token;
    const notAdmin = await fetch(`${gw.url}/admin/circuits`, { headers: { authorization: `Bearer ${user}` } });
    expect({ status: notAdmin.status, code: await errorCode(notAdmin) }).toEqual({ status: 403, code: 'forbidden' });

    const admin = (await keys.issuer.issue({ userId: '2', handle: 'root', scopes: ['admin'] })).token;
    const res = await fetch(`${gw.url}/admin/circuits`, { headers: { authorization: `Bearer ${admin}` } });
    expect(res.status).toBe(200);
    const { circuits } = (await res.json()) as { circuits: { service: string; url: string; state: string }[] };
    expect(circuits).toEqual([expect.objectContaining({ service, url: upstream.url, state: 'closed' })]);
  });
});
