import { randomUUID } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { afterEach, describe, expect, it } from 'vitest';
import { newRequestContext, runWithContext } from '@agora/observability';
import { createBus, type Bus, type BusObserver } from '../src/bus.js';
import { decodeEnvelope, encodeEnvelope, newEnvelope, type Envelope } from '../src/envelope.js';
import { BusErrorCodes, isBusError } from '../src/errors.js';
import { defineMessage } from '../src/messages.js';
import { createMemoryTransport, type MemoryTransport } from '../src/transports/memory.js';
import { eventually } from './transport.conformance.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Unique topic and type names per test, so nothing leaks between tests. */
function definitions() {
  const topic = `posts.${randomUUID().slice(0, 8)}`;
  const PostCreated = defineMessage({
    type: `${topic}.created`,
    version: 1,
    topic,
    schema: Type.Object({ postId: Type.String(), authorId: Type.String({ minLength: 1 }) }),
    key: (d) => d.authorId,
  });
  const PostLiked = defineMessage({ type: `${topic}.liked`, version: 1, topic, schema: Type.Object({ postId: Type.String() }) });
  const Add = defineMessage({ type: `${topic}.add`, version: 1, topic: `${topic}.rpc`, schema: Type.Object({ a: Type.Number(), b: Type.Number() }) });
  return { topic, PostCreated, PostLiked, Add };
}

const fast = { maxAttempts: 3, backoffMs: () => 0 };

const open: { bus: Bus; transport: MemoryTransport }[] = [];
afterEach(async () => {
  for (const { bus, transport } of open.splice(0)) {
    await bus.stop(100);
    await transport.close();
  }
});

async function setup(observer?: BusObserver) {
  const defs = definitions();
  const transport = createMemoryTransport({ closeGraceMs: 100 });
  const bus = createBus({ transport, source: 'social', messages: [defs.PostCreated, defs.PostLiked, defs.Add], ...(observer === undefined ? {} : { observer }) });
  await bus.start();
  open.push({ bus, transport });
  return { ...defs, transport, bus };
}

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (err) {
    return isBusError(err) ? err.code : `not a BusError: ${String(err)}`;
  }
  throw new Error('expected a rejection');
}

describe('bus: publish', () => {
  it('rejects a type the bus did not declare with unknown_message_type, and publishes nothing', async () => {
    const { bus, transport, topic } = await setup();
    await transport.declareGroup(topic, 'g');
    const Stranger = defineMessage({ type: 'stranger', version: 1, topic, schema: Type.Object({}) });
    expect(await codeOf(bus.publish(Stranger, {}))).toBe(BusErrorCodes.UNKNOWN_MESSAGE_TYPE);
    expect((await transport.stats(topic, 'g')).pending).toBe(0);
  });

  it('rejects data failing the schema with invalid_message naming the field, and publishes nothing', async () => {
    const { bus, transport, topic, PostCreated } = await setup();
    await transport.declareGroup(topic, 'g');
    let error: unknown;
    try {
      await bus.publish(PostCreated, { postId: '7', authorId: 42 } as never);
    } catch (err) {
      error = err;
    }
    expect(isBusError(error, BusErrorCodes.INVALID_MESSAGE)).toBe(true);
    const issues = (error as { details: { issues: string[] } }).details.issues;
    expect(issues.some((issue) => issue.startsWith('/authorId'))).toBe(true);
    expect(() => bus.prepare(PostCreated, { postId: '7' } as never)).toThrow(expect.objectContaining({ code: BusErrorCodes.INVALID_MESSAGE }));
    expect((await transport.stats(topic, 'g')).pending).toBe(0);
  });

  it('keeps the type header even when the caller passes one', async () => {
    const { bus, PostLiked } = await setup();
    const message = bus.prepare(PostLiked, { postId: '1' }, { headers: { type: 'forged', extra: 'x' } });
    expect(message.headers).toEqual({ type: PostLiked.type, extra: 'x' });
  });
});

describe('bus: subscribe', () => {
  it('routes by type, acks types without a handler, and passes the whole envelope', async () => {
    const { bus, transport, topic, PostCreated, PostLiked } = await setup();
    const created: Envelope[] = [];
    await bus.subscribe({ topic, group: 'feed', redelivery: fast, handlers: { [PostCreated.type]: async (env) => void created.push(env) } });
    const ctx = newRequestContext();
    const sent = await runWithContext(ctx, () => bus.publish(PostCreated, { postId: '7', authorId: '42' }));
    await bus.publish(PostLiked, { postId: '7' }); // no handler in 'feed': acked, skipped
    await eventually(async () => expect((await transport.stats(topic, 'feed')).pending).toBe(0), 2_000);
    expect(created).toHaveLength(1);
    const env = created[0]!;
    expect(env).toMatchObject({ id: sent.id, type: PostCreated.type, version: 1, source: 'social', key: '42', data: { postId: '7', authorId: '42' } });
    expect(new Date(env.time).toISOString()).toBe(env.time);
    expect(env.traceparent).toBe(`00-${ctx.traceId}-${ctx.spanId}-01`);
    expect(sent.key).toBe('42');
    expect(await transport.deadLetters.list({ topic })).toHaveLength(0);
  });

  it('has no traceparent outside a request context', async () => {
    const { bus, PostLiked } = await setup();
    expect(decodeEnvelope(bus.prepare(PostLiked, { postId: '1' }).body).traceparent).toBeUndefined();
  });

  it('dead-letters data failing its schema and a body that is not JSON, with the reason, without blocking the key', async () => {
    const { bus, transport, topic, PostCreated } = await setup();
    const handled: string[] = [];
    await bus.subscribe({ topic, group: 'feed', redelivery: fast, handlers: { [PostCreated.type]: async (env) => void handled.push((env.data as { postId: string }).postId) } });
    const invalid = newEnvelope({ type: PostCreated.type, version: 1, source: 'rogue', key: 'k', data: { postId: 1 } });
    await transport.publish(topic, [
      { id: invalid.id, key: 'k', headers: {}, body: encodeEnvelope(invalid) },
      { id: 'not-json', key: 'k', headers: {}, body: '{oops' },
      { id: 'null-json', key: 'k', headers: {}, body: 'null' },
    ]);
    await bus.publish(PostCreated, { postId: 'after', authorId: 'k' });
    await eventually(() => expect(handled).toEqual(['after']), 2_000);
    const dead = await eventually(async () => {
      const list = await transport.deadLetters.list({ topic, group: 'feed' });
      expect(list).toHaveLength(3);
      return list;
    }, 2_000);
    const reasons = Object.fromEntries(dead.map((d) => [d.message.id, d.errors.at(-1)?.error ?? '']));
    expect(reasons[invalid.id]).toContain('/postId');
    expect(reasons['not-json']).toContain('not JSON');
    expect(reasons['null-json']).toContain('not a JSON object');
    for (const d of dead) expect(d.attempts).toBe(1);
  });

  it('redelivers a handler that throws, then dead-letters it after maxAttempts', async () => {
    const { bus, transport, topic, PostLiked } = await setup();
    let calls = 0;
    await bus.subscribe({
      topic,
      group: 'g',
      redelivery: fast,
      handlers: {
        [PostLiked.type]: async () => {
          calls++;
          throw new Error('boom');
        },
      },
    });
    const sent = await bus.publish(PostLiked, { postId: '1' });
    const [dead] = await eventually(async () => {
      const list = await transport.deadLetters.list({ topic, group: 'g' });
      expect(list).toHaveLength(1);
      return list;
    }, 2_000);
    expect(calls).toBe(3);
    expect(dead!.message.id).toBe(sent.id);
    expect(dead!.attempts).toBe(3);
    expect(dead!.errors.map((e) => e.error)).toEqual(['boom', 'boom', 'boom']);
  });

  it('reports to the observer, and a throwing observer fails neither publish nor handling', async () => {
    const events: string[] = [];
    const observer: BusObserver = {
      published: (topic, type) => void events.push(`published ${type.split('.').at(-1)}`),
      delivered: (_t, group, attempt) => void events.push(`delivered ${group} ${attempt}`),
      acked: (_t, group, seconds) => void events.push(`acked ${group} ${seconds >= 0}`),
      nacked: (_t, group, err) => void events.push(`nacked ${group} ${(err as Error).message}`),
      deadLettered: (_t, group, reason) => void events.push(`dead ${group} ${reason}`),
    };
    const { bus, transport, topic, PostCreated, PostLiked } = await setup(observer);
    await bus.subscribe({ topic, group: 'ok', redelivery: fast, handlers: { [PostCreated.type]: async () => undefined } });
    await bus.subscribe({ topic, group: 'bad', redelivery: { maxAttempts: 2, backoffMs: () => 0 }, handlers: { [PostLiked.type]: async () => Promise.reject(new Error('no')) } });
    await bus.publish(PostCreated, { postId: '1', authorId: 'a' });
    await eventually(() => expect(events).toContain('acked ok true'), 2_000);
    await bus.publish(PostLiked, { postId: '1' });
    await eventually(() => expect(events).toContain('dead bad no'), 2_000);
    expect(events).toEqual(
      expect.arrayContaining(['published created', 'published liked', 'delivered ok 1', 'delivered bad 1', 'delivered bad 2', 'nacked bad no']),
    );
    expect(events.filter((e) => e === 'nacked bad no')).toHaveLength(2);

    // An observer that throws: the publish still resolves (it happened), the handler still acks.
    const throwing = createBus({
      transport,
      source: 'social',
      messages: [PostCreated],
      observer: {
        published: () => {
          throw new Error('metrics down');
        },
        delivered: () => {
          throw new Error('metrics down');
        },
      },
    });
    open.push({ bus: throwing, transport });
    let handled = 0;
    await throwing.subscribe({ topic, group: 'throwing', redelivery: fast, handlers: { [PostCreated.type]: async () => void handled++ } });
    await throwing.publish(PostCreated, { postId: '2', authorId: 'a' });
    await eventually(() => expect(handled).toBe(1), 2_000);
    expect(await transport.deadLetters.list({ topic, group: 'throwing' })).toHaveLength(0);
  });

  it('stop() lets handlers in flight finish', async () => {
    const { bus, transport, topic, PostLiked } = await setup();
    let started = false;
    let finished = false;
    await bus.subscribe({
      topic,
      group: 'g',
      handlers: {
        [PostLiked.type]: async () => {
          started = true;
          await sleep(150);
          finished = true;
        },
      },
    });
    await bus.publish(PostLiked, { postId: '1' });
    await eventually(() => expect(started).toBe(true), 2_000);
    await bus.stop(5_000);
    expect(finished).toBe(true);
    expect((await transport.stats(topic, 'g')).pending).toBe(0);
  });
});

describe('bus: request/reply', () => {
  it("returns the responder's result", async () => {
    const { bus, Add } = await setup();
    await bus.respond(Add, 'adder', async ({ a, b }) => a + b);
    expect(await bus.request<typeof Add, number>(Add, { a: 2, b: 3 })).toBe(5);
  });

  it('gives each of many concurrent requests its own reply', async () => {
    const { bus, Add } = await setup();
    await bus.respond(Add, 'adder', async ({ a, b }) => {
      await sleep(Math.random() * 20);
      return a + b;
    });
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => bus.request<typeof Add, number>(Add, { a: i, b: 1000 })));
    expect(results).toEqual(Array.from({ length: 50 }, (_, i) => i + 1000));
  });

  it('times out with request_timeout when nobody answers', async () => {
    const { bus, Add } = await setup();
    const started = Date.now();
    expect(await codeOf(bus.request(Add, { a: 1, b: 1 }, { timeoutMs: 100 }))).toBe(BusErrorCodes.REQUEST_TIMEOUT);
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
  });

  it('validates the request like a publish', async () => {
    const { bus, Add } = await setup();
    expect(await codeOf(bus.request(Add, { a: 'one', b: 1 } as never))).toBe(BusErrorCodes.INVALID_MESSAGE);
  });

  it('rejects pending requests when the bus stops, and serves requests again after', async () => {
    const { bus, Add, transport } = await setup();
    const pending = bus.request(Add, { a: 1, b: 1 }, { timeoutMs: 5_000 });
    await sleep(20);
    await bus.stop(100);
    expect(await codeOf(pending)).toBe(BusErrorCodes.TRANSPORT_CLOSED);

    const responder = createBus({ transport, source: 'math', messages: [Add] });
    open.push({ bus: responder, transport });
    await responder.respond(Add, 'adder', async ({ a, b }) => a * b);
    expect(await bus.request<typeof Add, number>(Add, { a: 3, b: 4 }, { timeoutMs: 2_000 })).toBe(12);
  });
});
