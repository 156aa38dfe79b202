import { randomUUID } from 'node:crypto';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTransport } from '../src/transports/index.js';
import { createNatsTransport, tokenOf, type NatsTransport } from '../src/transports/nats/index.js';
import type { SubscriptionSpec, TransportMessage } from '../src/transport.js';
import { eventually } from './transport.conformance.js';

// Behaviour of the nats transport beyond the contract. One prefix for the file, streams
// dropped at the end; every test uses its own topic names.
const prefix = `nats-${randomUUID().slice(0, 8)}`;
let admin: NatsConnection;
let jsm: JetStreamManager;
const open: NatsTransport[] = [];

beforeAll(async () => {
  admin = await connect({ servers: inject('natsUrl') });
  jsm = await jetstreamManager(admin);
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((transport) => transport.close()));
});

afterAll(async () => {
  for await (const name of jsm.streams.names()) if (name.startsWith(`${prefix}_`)) await jsm.streams.delete(name);
  await admin.close();
});

function transport(): NatsTransport {
  const created = createNatsTransport({ url: inject('natsUrl'), prefix, closeGraceMs: 200 });
  open.push(created);
  return created;
}

const topicName = () => `t.${randomUUID()}`;
const message = (id: string, body = `body-${id}`): TransportMessage => ({ id, headers: { 'content-type': 'text/plain' }, body });

function subscription(topic: string, group: string, overrides: Partial<SubscriptionSpec> = {}): SubscriptionSpec {
  return { topic, group, maxInFlight: 1, visibilityTimeoutMs: 5_000, redelivery: { maxAttempts: 3, backoffMs: () => 0 }, ...overrides };
}

describe('nats transport', () => {
  it('is what createTransport resolves nats:// to, connecting on first use', async () => {
    const resolved = createTransport(`${inject('natsUrl')}`);
    expect(resolved.kind).toBe('nats');
    await resolved.close();
  });

  it('encodes names so dots, spaces and underscores make valid, distinct streams', async () => {
    expect(tokenOf('orders-v1')).toBe('orders-v1');
    expect(tokenOf('a.b c_d')).toBe('a_2eb_20c_5fd');
    expect(new Set(['a.b', 'a_2eb', 'a_b']).size).toBe(new Set(['a.b', 'a_2eb', 'a_b'].map(tokenOf)).size);
    const bus = transport();
    const topic = `dotted.topic with space ${randomUUID()}`;
    await bus.declareTopic({ name: topic });
    await bus.declareGroup(topic, 'group.with.dots');
    const seen: string[] = [];
    await bus.consume(subscription(topic, 'group.with.dots'), async (d) => void seen.push(d.message.body));
    await bus.publish(topic, [message('1', 'hello')]);
    await eventually(() => expect(seen).toEqual(['hello']), 5_000);
  });

  it('drops a message id published twice within the duplicate window (safe outbox resends)', async () => {
    const bus = transport();
    const topic = topicName();
    await bus.declareTopic({ name: topic });
    await bus.declareGroup(topic, 'g');
    await bus.publish(topic, [message('same')]);
    await bus.publish(topic, [message('same')]);
    expect((await bus.stats(topic, 'g')).pending).toBe(1);
  });

  it('keeps the first declaration, seen by every process through the stream', async () => {
    const first = transport();
    const topic = topicName();
    await first.declareTopic({ name: topic, partitions: 4, maxMessageBytes: 100 });
    const second = transport();
    await second.declareTopic({ name: topic, partitions: 1, maxMessageBytes: 10_000 });
    await expect(second.publish(topic, [message('big', 'x'.repeat(200))])).rejects.toMatchObject({ code: 'message_too_large' });
    await second.declareGroup(topic, 'g');
    const info = await jsm.streams.info(`${prefix}_${tokenOf(topic)}`);
    expect(info.config.subjects).toHaveLength(4);
    expect(info.state.consumer_count).toBe(4);
  });

  it('drops what was held for nobody when the first group starts from latest', async () => {
    const bus = transport();
    const topic = topicName();
    await bus.declareTopic({ name: topic });
    await bus.publish(topic, [message('old')]);
    await bus.declareGroup(topic, 'late', { startFrom: 'latest' });
    const stream = `${prefix}_${tokenOf(topic)}`;
    expect((await jsm.streams.info(stream)).state.messages).toBe(0);
    const seen: string[] = [];
    await bus.consume(subscription(topic, 'late', { startFrom: 'latest' }), async (d) => void seen.push(d.message.id));
    await bus.publish(topic, [message('new')]);
    await eventually(() => expect(seen).toEqual(['new']), 5_000);
    await eventually(async () => expect((await jsm.streams.info(stream)).state.messages).toBe(0), 5_000);
  });

  it('keeps the error of every attempt when the attempts run in different processes', async () => {
    const a = transport();
    const b = transport();
    const topic = topicName();
    await a.declareTopic({ name: topic });
    await a.declareGroup(topic, 'g');
    let calls = 0;
    const failing = (who: string) => async () => {
      calls++;
      throw new Error(`${who} failed`);
    };
    const consumerA = await a.consume(subscription(topic, 'g'), failing('a'));
    await a.publish(topic, [message('poison')]);
    await eventually(() => expect(calls).toBe(1), 5_000);
    await consumerA.stop();
    await b.consume(subscription(topic, 'g'), failing('b'));
    const [dead] = await eventually(async () => {
      const list = await b.deadLetters.list({ topic });
      expect(list).toHaveLength(1);
      return list;
    }, 5_000);
    // The stopped consumer's release spent no error but did spend a delivery (JetStream counts them all).
    expect(dead!.errors[0]).toMatchObject({ attempt: 1, error: 'a failed' });
    expect(dead!.errors.at(-1)).toMatchObject({ error: 'b failed' });
    expect(dead!.attempts).toBe(3);
  });

  it('replays a dead letter to its own group only; other groups acknowledge it unseen', async () => {
    const bus = transport();
    const topic = topicName();
    await bus.declareTopic({ name: topic });
    await bus.declareGroup(topic, 'picky');
    await bus.declareGroup(topic, 'easy');
    let accept = false;
    const picky: string[] = [];
    const easy: string[] = [];
    await bus.consume(subscription(topic, 'picky'), async (d) => {
      if (!accept) return d.deadLetter('not yet');
      picky.push(d.message.id);
    });
    await bus.consume(subscription(topic, 'easy'), async (d) => void easy.push(d.message.id));
    await bus.publish(topic, [message('m1')]);
    const [dead] = await eventually(async () => {
      const list = await bus.deadLetters.list({ topic, group: 'picky' });
      expect(list).toHaveLength(1);
      return list;
    }, 5_000);
    accept = true;
    expect(await bus.deadLetters.replay(dead!.id)).toBe(true);
    await eventually(() => expect(picky).toEqual(['m1']), 5_000);
    await eventually(async () => expect((await bus.stats(topic, 'easy')).pending).toBe(0), 5_000);
    expect(easy).toEqual(['m1']);
  });
});
