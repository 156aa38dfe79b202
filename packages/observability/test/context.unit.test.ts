import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { acceptRequestId, currentContext, newRequestContext, propagationHeaders, runWithContext } from '../src/index.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TRACE_ID = /^[0-9a-f]{32}$/;
const SPAN_ID = /^[0-9a-f]{16}$/;
const traceId = () => randomUUID().replaceAll('-', '');
const spanId = () => traceId().slice(0, 16);

describe('newRequestContext: request id', () => {
  it('keeps a short printable x-request-id', () => {
    const requestId = `req-${randomUUID()}`;
    expect(newRequestContext({ requestId }).requestId).toBe(requestId);
  });

  it('takes the first value when the header was sent twice', () => {
    const first = `first-${randomUUID()}`;
    expect(newRequestContext({ requestId: [first, 'second'] }).requestId).toBe(first);
  });

  it.each([
    ['a newline (log injection)', 'abc\ninjected: yes'],
    ['a trailing newline', 'abc\n'],
    ['a carriage return (header injection)', 'abc\r\nset-cookie: x=1'],
    ['a space', 'abc def'],
    ['more than 128 characters', 'a'.repeat(129)],
    ['nothing at all', ''],
  ])('makes a new id instead of accepting %s', (_case, candidate) => {
    const { requestId } = newRequestContext({ requestId: candidate });
    expect(requestId).not.toBe(candidate);
    expect(requestId).toMatch(UUID);
  });

  it('accepts exactly 128 characters, the longest allowed', () => {
    const candidate = 'b'.repeat(128);
    expect(acceptRequestId(candidate)).toBe(candidate);
  });

  it('makes a different id for every request that brings none', () => {
    expect(newRequestContext().requestId).not.toBe(newRequestContext().requestId);
  });
});

describe('newRequestContext: traceparent', () => {
  it('continues the trace of a valid traceparent with a new span of its own', () => {
    const incomingTrace = traceId();
    const incomingSpan = spanId();
    const ctx = newRequestContext({ traceparent: `00-${incomingTrace}-${incomingSpan}-01` });
    expect(ctx.traceId).toBe(incomingTrace);
    expect(ctx.spanId).toMatch(SPAN_ID);
    expect(ctx.spanId).not.toBe(incomingSpan);
  });

  it.each([
    ['garbage', 'not-a-traceparent'],
    ['an all-zero trace id', `00-${'0'.repeat(32)}-${'1'.repeat(16)}-01`],
    ['upper-case hex', `00-${'A'.repeat(32)}-${'1'.repeat(16)}-01`],
    ['a short trace id', `00-${'a'.repeat(31)}-${'1'.repeat(16)}-01`],
    ['an unknown version', `01-${'a'.repeat(32)}-${'1'.repeat(16)}-01`],
    ['a trailing newline', `00-${'a'.repeat(32)}-${'1'.repeat(16)}-01\n`],
  ])('starts a new trace when the traceparent has %s', (_case, traceparent) => {
    const ctx = newRequestContext({ traceparent });
    expect(ctx.traceId).toMatch(TRACE_ID);
    expect(ctx.traceId).not.toBe('0'.repeat(32));
    expect(traceparent).not.toContain(ctx.traceId);
  });

  it('starts a new trace when there is no traceparent', () => {
    const ctx = newRequestContext();
    expect(ctx.traceId).toMatch(TRACE_ID);
    expect(ctx.spanId).toMatch(SPAN_ID);
  });
});

describe('propagationHeaders', () => {
  it('round-trips: the next hop rebuilds the same request and trace ids', () => {
    // given a context of an incoming request
    const ctx = newRequestContext({ requestId: `rt-${randomUUID()}` });
    // when its headers are sent to the next hop and read back there
    const headers = propagationHeaders(ctx);
    const next = newRequestContext({ requestId: headers['x-request-id'], traceparent: headers.traceparent });
    // then the ids carry over and the span of this hop becomes the parent of the next
    expect(headers.traceparent).toBe(`00-${ctx.traceId}-${ctx.spanId}-01`);
    expect(next.requestId).toBe(ctx.requestId);
    expect(next.traceId).toBe(ctx.traceId);
    expect(next.spanId).not.toBe(ctx.spanId);
  });

  it('uses the current context by default and is empty outside one', () => {
    const ctx = newRequestContext();
    expect(runWithContext(ctx, () => propagationHeaders())).toEqual(propagationHeaders(ctx));
    expect(propagationHeaders()).toEqual({});
  });
});

describe('runWithContext / currentContext', () => {
  it('keeps the context across awaits and timers, and only inside the run', async () => {
    const ctx = newRequestContext({ requestId: `await-${randomUUID()}` });
    const seen = await runWithContext(ctx, async () => {
      const before = currentContext();
      await sleep(5);
      const afterTimer = currentContext();
      await Promise.resolve();
      return [before, afterTimer, currentContext()];
    });
    expect(seen).toEqual([ctx, ctx, ctx]);
    expect(currentContext()).toBeUndefined();
  });

  it('keeps concurrent requests apart', async () => {
    const a = newRequestContext({ requestId: `a-${randomUUID()}` });
    const b = newRequestContext({ requestId: `b-${randomUUID()}` });
    const read = (delay: number) => async () => {
      await sleep(delay);
      return currentContext()?.requestId;
    };
    const [ra, rb] = await Promise.all([runWithContext(a, read(15)), runWithContext(b, read(1))]);
    expect([ra, rb]).toEqual([a.requestId, b.requestId]);
  });

  it('lets an inner run shadow the outer context and restores it after', () => {
    const outer = newRequestContext();
    const inner = newRequestContext();
    const seen = runWithContext(outer, () => [runWithContext(inner, () => currentContext()), currentContext()]);
    expect(seen).toEqual([inner, outer]);
  });
});
