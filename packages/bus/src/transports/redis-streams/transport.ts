import { Redis } from 'ioredis';
import { noopLogger } from '@agora/db';
import { MAX_TIMER_MS, systemBusClock } from '../../clock.js';
import { BusError, BusErrorCodes } from '../../errors.js';
import { partitionOf } from '../../partition.js';
import type { Consumer, DeliveryHandler, GroupStats, SubscriptionSpec, TopicSpec, Transport, TransportMessage } from '../../transport.js';
import { defineScripts } from './commands.js';
import { RedisStreamsConsumer } from './consumer.js';
import { createRedisDeadLetterStore } from './dead-letters.js';
import { Notifier } from './notifier.js';
import { checkMessageSizes } from '../shared/message-size.js';
import { checkSubscription, checkTopicName, checkTopicSpec } from '../shared/validate.js';
import { waitForRoom as waitForRoomOf, type RoomWatch } from '../shared/wait-for-room.js';
import {
  channelKey,
  closedError,
  DEFAULT_GRACE_MS,
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_POLL_INTERVAL_MS,
  DEFAULT_PREFIX,
  invalidOption,
  redisStreamsKeys,
  topicsKey,
  unknownTopic,
  type RedisStreamsTransportOptions,
} from './options.js';

/** The Redis Streams transport: the {@link Transport} contract, plus where it keeps its keys. */
export interface RedisStreamsTransport extends Transport {
  readonly kind: 'redis-streams';
  /** Put before every key (see `redisStreamsKeys`). */
  readonly prefix: string;
}

/** A declared topic's settings, as stored in its meta hash (they never change once declared). */
interface TopicInfo {
  readonly partitions: number;
  readonly maxMessageBytes: number;
  readonly maxUnacked: number | undefined;
  readonly onFull: 'wait' | 'reject';
}

/**
 * Creates the Redis Streams transport (Redis >= 7). One stream per (topic, partition),
 * `<prefix>{<topic>}:p<n>`, and one stream consumer group per bus group on each; every state
 * change is one Lua script (scripts.ts has their contracts), so it is atomic and one round trip.
 *
 * - **Ordering**: a group's head per partition (its one pending entry, plus attempts, lease,
 *   backoff and errors in `heads:<group>`) must be settled before the claim script reads the
 *   partition's next entry, so at most one message per (group, partition) is out.
 * - **Leases and retries**: a claim leases the head until server time + visibility timeout;
 *   the holder's own timer settles an expired lease as a failed attempt, and any claim does so
 *   for a holder that died. A nack keeps the partition through its backoff (order first).
 *   Attempts are the transport's own count (the PEL's delivery count cannot be given back
 *   when a stopping consumer releases a lease).
 * - **Interest retention**: no MAXLEN (it would drop what a slow group has not read). Every
 *   settlement trims the partition to the lowest mark over its groups (pending entry, or the
 *   entry after the last delivered) with XTRIM MINID, so a stream holds exactly what some
 *   group has not settled, and XLEN is the backlog `maxUnacked` bounds. A topic with no group
 *   keeps its messages for the first group that starts from 'earliest' (as postgres does).
 * - **Wake-ups**: PUBLISH on `<prefix>events` from the scripts (one subscriber connection per
 *   transport), a wake-up when a blocked head becomes claimable, and a poll as a safety net.
 * - **Replays** are appended for one group (a field `o`); caught-up groups step over them at
 *   once, the others when they reach them (until then they count them as pending).
 *
 * @example
 * ```ts
 * const transport = createRedisStreamsTransport({ url: process.env.REDIS_URL, prefix: 'bus:' });
 * await transport.declareTopic({ name: 'posts', partitions: 8 });
 * await transport.declareGroup('posts', 'search-indexer');
 * await transport.publish('posts', [{ id: '1', key: 'post-1', headers: {}, body: '{"id":1}' }]);
 * const consumer = await transport.consume(
 *   { topic: 'posts', group: 'search-indexer', maxInFlight: 8, visibilityTimeoutMs: 30_000,
 *     redelivery: { maxAttempts: 5, backoffMs: (n) => 1_000 * 2 ** (n - 1) } },
 *   async (delivery) => index(JSON.parse(delivery.message.body)),
 * );
 * await transport.close();
 * ```
 */
export function createRedisStreamsTransport(options: RedisStreamsTransportOptions = {}): RedisStreamsTransport {
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  if (prefix.includes('{')) throw invalidOption(`prefix must not contain "{", got ${JSON.stringify(prefix)}`, { prefix });
  const logger = options.logger ?? noopLogger;
  const clock = options.clock ?? systemBusClock;
  const pollIntervalMs = options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
  if (!(pollIntervalMs > 0)) throw invalidOption(`pollIntervalMs must be positive, got ${pollIntervalMs}`, { pollIntervalMs });
  const closeGraceMs = options.closeGraceMs ?? DEFAULT_GRACE_MS;

  let redis: Redis;
  const ownsClient = options.redis === undefined;
  if (options.redis !== undefined) redis = options.redis;
  else if (options.url !== undefined) redis = new Redis(options.url);
  else throw invalidOption('createRedisStreamsTransport needs a redis client or a url', {});
  if (ownsClient) redis.on('error', (err: unknown) => logger.warn({ err }, 'bus redis connection error'));

  const run = defineScripts(redis);
  const channel = channelKey(prefix);
  const notifier = new Notifier(() => redis.duplicate(), channel, logger);
  const consumers = new Set<RedisStreamsConsumer>();
  const topics = new Map<string, TopicInfo>();
  let closed: Promise<void> | undefined;

  function ready(): void {
    if (closed !== undefined) throw closedError();
  }

  async function loadTopic(topic: string): Promise<TopicInfo | undefined> {
    const cached = topics.get(topic);
    if (cached !== undefined) return cached;
    const [partitions, maxMessageBytes, maxUnacked, onFull] = await redis.hmget(redisStreamsKeys(prefix, topic).meta, 'partitions', 'maxMessageBytes', 'maxUnacked', 'onFull');
    if (partitions === null || partitions === undefined) return undefined;
    const info: TopicInfo = {
      partitions: Number(partitions),
      maxMessageBytes: Number(maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES),
      maxUnacked: maxUnacked === null || maxUnacked === undefined ? undefined : Number(maxUnacked),
      onFull: onFull === 'wait' ? 'wait' : 'reject',
    };
    topics.set(topic, info);
    return info;
  }

  async function topicInfo(topic: string): Promise<TopicInfo> {
    const info = await loadTopic(topic);
    if (info === undefined) throw unknownTopic(topic);
    return info;
  }

  const streamsOf = (topic: string, info: TopicInfo) => {
    const keys = redisStreamsKeys(prefix, topic);
    return Array.from({ length: info.partitions }, (_, p) => keys.stream(p));
  };

  async function declareGroup(topic: string, group: string, groupOptions: { startFrom?: 'earliest' | 'latest' } = {}): Promise<void> {
    ready();
    const info = await topicInfo(topic);
    const keys = redisStreamsKeys(prefix, topic);
    const done = await run('agoraBusDeclareGroup', [keys.meta, keys.groups, ...streamsOf(topic, info)], [group, groupOptions.startFrom ?? 'earliest', topic, channel]);
    if (done === -1) throw unknownTopic(topic);
  }

  const roomWatch: RoomWatch = { clock, pollIntervalMs, subscribe: (topic, listener) => notifier.subscribe(topic, listener) };
  const waitForRoom = (topic: string, signal: AbortSignal | undefined) => waitForRoomOf(roomWatch, topic, signal);

  /** One all-or-nothing append; 'full' when the batch does not fit under maxUnacked. */
  async function append(topic: string, info: TopicInfo, messages: readonly TransportMessage[]): Promise<'ok' | 'full'> {
    const keys = redisStreamsKeys(prefix, topic);
    const args: (string | number)[] = [topic, channel];
    for (const message of messages) {
      const p = info.partitions === 1 ? 0 : partitionOf(message.key, info.partitions, message.id);
      args.push(p, message.id, message.key === undefined ? '0' : '1', message.key ?? '', JSON.stringify(message.headers), message.body);
    }
    const [status] = (await run('agoraBusPublish', [keys.meta, keys.groups, ...streamsOf(topic, info)], args)) as [string, ...unknown[]];
    if (status === 'unknown') {
      topics.delete(topic);
      throw unknownTopic(topic);
    }
    return status === 'full' ? 'full' : 'ok';
  }

  const transport: RedisStreamsTransport = {
    kind: 'redis-streams',
    prefix,

    async declareTopic(spec: TopicSpec) {
      ready();
      checkTopicName(spec);
      const { partitions, maxMessageBytes, onFull } = checkTopicSpec(spec);
      await run('agoraBusDeclareTopic', [redisStreamsKeys(prefix, spec.name).meta], [partitions, maxMessageBytes, spec.maxUnacked ?? '', onFull]);
      // Another slot than the topic's keys, so not in the script; idempotent either way.
      await redis.sadd(topicsKey(prefix), spec.name);
    },

    declareGroup,

    async publish(topic, messages, publishOptions = {}) {
      ready();
      const { signal } = publishOptions;
      const info = await topicInfo(topic);
      checkMessageSizes(topic, messages, info.maxMessageBytes);
      if (messages.length === 0) return;
      // A batch bigger than the bound could never fit whole: like the memory transport, append
      // it in order, a bound's worth at a time (what went in stays if aborted).
      const size = info.onFull === 'wait' && info.maxUnacked !== undefined ? Math.min(messages.length, info.maxUnacked) : messages.length;
      for (let from = 0; from < messages.length; ) {
        signal?.throwIfAborted();
        const chunk = messages.slice(from, from + size);
        if ((await append(topic, info, chunk)) === 'ok') {
          from += chunk.length;
          continue;
        }
        if (info.onFull === 'reject') {
          throw new BusError(BusErrorCodes.QUEUE_FULL, `topic ${topic} holds its maximum of ${info.maxUnacked} unacknowledged messages`, { topic, maxUnacked: info.maxUnacked, onFull: info.onFull });
        }
        await waitForRoom(topic, signal);
        if (closed !== undefined) throw new BusError(BusErrorCodes.TRANSPORT_CLOSED, 'the redis-streams transport closed while publish waited for room', { topic });
      }
    },

    async consume(subscription: SubscriptionSpec, handler: DeliveryHandler): Promise<Consumer> {
      checkSubscription(subscription);
      await declareGroup(subscription.topic, subscription.group, subscription.startFrom === undefined ? {} : { startFrom: subscription.startFrom });
      const info = await topicInfo(subscription.topic);
      const consumer = new RedisStreamsConsumer(subscription, handler, {
        run,
        keys: redisStreamsKeys(prefix, subscription.topic),
        channel,
        partitions: info.partitions,
        clock,
        logger,
        pollIntervalMs: Math.min(pollIntervalMs, MAX_TIMER_MS),
        listen: (listener) => notifier.subscribe(subscription.topic, listener),
        onStopped: (stopped) => consumers.delete(stopped),
      });
      consumers.add(consumer);
      await consumer.start();
      return consumer;
    },

    async stats(topic, group): Promise<GroupStats> {
      ready();
      const keys = redisStreamsKeys(prefix, topic);
      const reply = (await run('agoraBusStats', [keys.meta, keys.heads(group)], [group])) as [number, number, number] | null;
      if (reply === null) throw unknownTopic(topic);
      const [pending, inFlight, deadLetters] = reply;
      return { topic, group, pending, inFlight, deadLetters };
    },

    deadLetters: createRedisDeadLetterStore({
      redis,
      run,
      prefix,
      partitionsOf: async (topic) => (await loadTopic(topic))?.partitions,
      ready,
    }),

    close() {
      closed ??= (async () => {
        await Promise.allSettled([...consumers].map((consumer) => consumer.stop({ graceMs: closeGraceMs })));
        await notifier.close();
        if (ownsClient) {
          try {
            await redis.quit();
          } catch {
            redis.disconnect();
          }
        }
      })();
      return closed;
    },
  };
  return transport;
}
