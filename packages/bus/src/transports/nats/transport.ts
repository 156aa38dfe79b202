import { AckPolicy, DeliverPolicy, DiscardPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { connect, headers, nanos, type NatsConnection } from '@nats-io/transport-node';
import { systemBusClock, type BusClock } from '../../clock.js';
import { BusError } from '../../errors.js';
import { partitionOf } from '../../partition.js';
import type { Consumer, DeadLetter, DeliveryHandler, GroupStats, SubscriptionSpec, TopicSpec, Transport, TransportMessage } from '../../transport.js';
import { AttemptLog } from './attempts.js';
import { NatsConsumer } from './consumer.js';
import { createNatsDeadLetterStore, ensureDeadLetterStream } from './dead-letters.js';
import { checkMessageSizes } from '../shared/message-size.js';
import { checkSubscription, checkTopicName, checkTopicSpec } from '../shared/validate.js';
import {
  closedError,
  DEFAULT_ACK_WAIT_MS,
  DEFAULT_PREFIX,
  encodeMeta,
  invalidOption,
  MESSAGE_HEADER,
  Names,
  ONLY_GROUP_HEADER,
  unknownTopic,
} from './names.js';

export interface NatsTransportOptions {
  /** A connection to use (not closed by `close()`); otherwise one is opened to `url`. */
  readonly nc?: NatsConnection;
  /** `nats://host:port`, used when no `nc` is given. */
  readonly url?: string;
  /** Namespace of every stream and subject; `[A-Za-z0-9-]+`, default 'agora'. */
  readonly prefix?: string;
  /** Time for visibility timers, publish back-off and timestamps; default the system clock. */
  readonly clock?: BusClock;
  /** How long `close()` lets running handlers finish; default 10 s. */
  readonly closeGraceMs?: number;
}

/** The nats transport: the {@link Transport} contract on JetStream. */
export interface NatsTransport extends Transport {
  readonly kind: 'nats';
  readonly prefix: string;
}

/** A topic's settings, kept in its stream's description so every process reads the same. */
interface TopicSettings {
  readonly topic: string;
  readonly partitions: number;
  readonly maxMessageBytes: number;
  readonly maxUnacked: number | null;
  readonly onFull: 'wait' | 'reject';
}

/** JetStream's "maximum messages exceeded": a stream with `discard: new` is full. */
const MAX_MESSAGES_EXCEEDED = 10077;
/** JetStream's "stream not found". */
const STREAM_NOT_FOUND = 10059;
/** Room for the transport's own header (id, key, headers as JSON) over the contract's byte count. */
const HEADER_ALLOWANCE = 4096;
const PIPELINE = 128;
/**
 * A durable that never pulls, holding interest while a topic has no group, so what is published
 * before the first group is kept for it. Deleted once a group exists. A group token never starts
 * with `_h` (see `tokenOf`), so it cannot clash with a group's durables.
 */
const HOLD = '_hold';

function apiCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** A Nats-Msg-Id must fit on a header line. */
function dedupId(id: string): string | undefined {
  return id !== '' && !/[\r\n]/.test(id) ? id : undefined;
}

/**
 * Creates the NATS JetStream transport.
 *
 * - A topic is a stream `{prefix}_{topic}` with one subject per partition,
 *   `{prefix}.{topic}.p.{n}` (names encoded, see `tokenOf`), `retention: interest`: a message
 *   goes once every group's consumers have acknowledged (or terminated) it. JetStream stores
 *   nothing for a stream without consumers, so until its first group a topic has a placeholder
 *   durable (`_hold`, never pulled) keeping what is published for that group; the first group
 *   deletes it (and, starting from 'latest', purges what it held).
 * - `maxMessageBytes` is checked here (typed `message_too_large`, the whole batch refused);
 *   the stream's `max_msg_size` backs it with room for the transport's own header.
 * - Every message carries `Nats-Msg-Id` = its id: publishing the same id again within the
 *   stream's duplicate window (2 min) is a no-op, so an outbox relay may resend safely.
 * - `maxUnacked` is the stream's `max_msgs` with `discard: new`. A bounded topic publishes one
 *   message at a time (a refusal must not reorder a batch); when full, 'reject' throws
 *   `queue_full` (messages before it in the batch stay) and 'wait' retries with back-off until
 *   room appears or the signal aborts. Unbounded topics pipeline their batches.
 * - A group is one durable pull consumer per partition (`{group}_p{n}`, `max_ack_pending: 1`,
 *   `ack_wait` = the visibility timeout of the latest `consume`); see {@link NatsConsumer}.
 *   Error histories live in `{prefix}__attempts`, dead letters in `{prefix}__dlq`.
 * - A delivery released by a stopping consumer is `-NAK`ed: unlike the memory transport, it
 *   counts as an attempt (JetStream counts every delivery).
 *
 * @example
 * const transport = createNatsTransport({ url: 'nats://127.0.0.1:4222', prefix: 'agora' });
 * await transport.declareTopic({ name: 'posts', partitions: 8 });
 * await transport.declareGroup('posts', 'search-indexer');
 * await transport.publish('posts', [{ id: '1', key: 'post-1', headers: {}, body: '{"id":1}' }]);
 * const consumer = await transport.consume(
 *   { topic: 'posts', group: 'search-indexer', maxInFlight: 8, visibilityTimeoutMs: 30_000,
 *     redelivery: { maxAttempts: 5, backoffMs: (n) => 1_000 * 2 ** (n - 1) } },
 *   async (delivery) => index(JSON.parse(delivery.message.body)),
 * );
 * await transport.close();
 */
export function createNatsTransport(options: NatsTransportOptions = {}): NatsTransport {
  const names = new Names(options.prefix ?? DEFAULT_PREFIX);
  const clock = options.clock ?? systemBusClock;
  const closeGraceMs = options.closeGraceMs ?? 10_000;
  if (options.nc === undefined && options.url === undefined) throw invalidOption('createNatsTransport needs a connection (nc) or a url', {});
  const ownsConnection = options.nc === undefined;

  interface Session {
    readonly nc: NatsConnection;
    readonly js: JetStreamClient;
    readonly jsm: JetStreamManager;
    readonly attempts: AttemptLog;
  }
  let session: Promise<Session> | undefined;
  let closed: Promise<void> | undefined;
  const settingsCache = new Map<string, TopicSettings>();
  const declaredGroups = new Set<string>();
  const consumers = new Set<NatsConsumer>();

  function ready(): Promise<Session> {
    if (closed !== undefined) return Promise.reject(closedError());
    session ??= (async () => {
      const nc = options.nc ?? (await connect({ servers: options.url as string }));
      const js = jetstream(nc);
      const jsm = await jetstreamManager(nc);
      await Promise.all([ensureDeadLetterStream(jsm, names), AttemptLog.ensure(jsm, names)]);
      return { nc, js, jsm, attempts: new AttemptLog(js, jsm, names) };
    })();
    // A failed start is not cached: the next call tries again (the server may be back).
    session.catch(() => {
      session = undefined;
    });
    return session;
  }

  async function settingsOf(topic: string): Promise<TopicSettings> {
    const cached = settingsCache.get(topic);
    if (cached !== undefined) return cached;
    const { jsm } = await ready();
    let description: string | undefined;
    try {
      description = (await jsm.streams.info(names.stream(topic))).config.description;
    } catch (err) {
      if (apiCode(err) === STREAM_NOT_FOUND || (err instanceof Error && /not found/i.test(err.message))) throw unknownTopic(topic);
      throw err;
    }
    const settings = JSON.parse(description ?? '{}') as TopicSettings;
    if (settings.topic !== topic) throw unknownTopic(topic);
    settingsCache.set(topic, settings);
    return settings;
  }

  async function declareGroup(topic: string, group: string, startFrom: 'earliest' | 'latest' = 'earliest', ackWaitMs?: number): Promise<TopicSettings> {
    const settings = await settingsOf(topic);
    const groupKey = `${topic}\u0000${group}`;
    if (declaredGroups.has(groupKey) && ackWaitMs === undefined) return settings;
    const { jsm } = await ready();
    const stream = names.stream(topic);
    const held = (await jsm.consumers.info(stream, HOLD).catch(() => undefined)) !== undefined;
    // The first group starting from 'latest' wants none of what was held for nobody.
    if (held && startFrom === 'latest') await jsm.streams.purge(stream);
    await Promise.all(
      Array.from({ length: settings.partitions }, async (_, p) => {
        const durable = names.durable(group, p);
        const info = await jsm.consumers.info(stream, durable).catch(() => undefined);
        if (info === undefined) {
          await jsm.consumers.add(stream, {
            durable_name: durable,
            filter_subject: names.subject(topic, p),
            ack_policy: AckPolicy.Explicit,
            max_ack_pending: 1,
            ack_wait: nanos(ackWaitMs ?? DEFAULT_ACK_WAIT_MS),
            deliver_policy: startFrom === 'latest' ? DeliverPolicy.New : DeliverPolicy.All,
            max_deliver: -1,
          });
        } else if (ackWaitMs !== undefined && info.config.ack_wait !== nanos(ackWaitMs)) {
          await jsm.consumers.update(stream, durable, { ack_wait: nanos(ackWaitMs) });
        }
      }),
    );
    if (held) await jsm.consumers.delete(stream, HOLD).catch(() => undefined);
    declaredGroups.add(groupKey);
    return settings;
  }

  async function publishOne(js: JetStreamClient, settings: TopicSettings, message: TransportMessage, onlyGroup?: string): Promise<void> {
    const h = headers();
    h.set(MESSAGE_HEADER, encodeMeta(message));
    if (onlyGroup !== undefined) h.set(ONLY_GROUP_HEADER, onlyGroup);
    const subject = names.subject(settings.topic, partitionOf(message.key, settings.partitions, message.id));
    // A replay must not be swallowed as a duplicate of the original.
    const msgID = onlyGroup === undefined ? dedupId(message.id) : undefined;
    try {
      await js.publish(subject, message.body, msgID === undefined ? { headers: h } : { headers: h, msgID });
    } catch (err) {
      if (apiCode(err) === MAX_MESSAGES_EXCEEDED) {
        throw new BusError('queue_full', `topic ${settings.topic} holds ${settings.maxUnacked} unacknowledged messages`, {
          topic: settings.topic,
          maxUnacked: settings.maxUnacked,
          onFull: settings.onFull,
        });
      }
      if (err instanceof Error && /no responders/i.test(err.message)) {
        settingsCache.delete(settings.topic);
        throw unknownTopic(settings.topic);
      }
      if (err instanceof Error && /message size exceeds/i.test(err.message)) {
        throw new BusError('message_too_large', `message ${message.id} is too large for topic ${settings.topic}`, { topic: settings.topic, id: message.id });
      }
      throw err;
    }
  }

  /** Waits `ms`, or rejects with the signal's reason (or transport_closed). */
  function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        clock.clearTimeout(timer);
        reject(signal?.reason);
      };
      const timer = clock.setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  async function republish(entry: DeadLetter): Promise<boolean> {
    let settings: TopicSettings;
    try {
      settings = await settingsOf(entry.topic);
    } catch {
      return false;
    }
    const { js } = await ready();
    await publishOne(js, settings, entry.message, entry.group);
    return true;
  }

  const deadLetters = createNatsDeadLetterStore(names, ready, republish);

  const transport: NatsTransport = {
    kind: 'nats',
    prefix: names.prefix,

    async declareTopic(spec: TopicSpec) {
      checkTopicName(spec);
      const { partitions, maxMessageBytes, onFull } = checkTopicSpec(spec);
      try {
        await settingsOf(spec.name);
        return; // re-declaring keeps the first settings
      } catch (err) {
        if (!(err instanceof BusError && err.code === 'unknown_topic')) throw err;
      }
      const { jsm } = await ready();
      const settings: TopicSettings = { topic: spec.name, partitions, maxMessageBytes, maxUnacked: spec.maxUnacked ?? null, onFull };
      try {
        await jsm.streams.add({
          name: names.stream(spec.name),
          description: JSON.stringify(settings),
          subjects: Array.from({ length: partitions }, (_, p) => names.subject(spec.name, p)),
          retention: RetentionPolicy.Interest,
          storage: StorageType.File,
          max_msg_size: maxMessageBytes * 2 + HEADER_ALLOWANCE,
          max_msgs: spec.maxUnacked ?? -1,
          discard: spec.maxUnacked === undefined ? DiscardPolicy.Old : DiscardPolicy.New,
        });
      } catch (err) {
        // Declared by another process meanwhile: theirs is the first declaration.
        await settingsOf(spec.name).catch(() => Promise.reject(err));
        return;
      }
      await jsm.consumers.add(names.stream(spec.name), { durable_name: HOLD, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All });
      settingsCache.set(spec.name, settings);
    },

    async declareGroup(topic, group, groupOptions) {
      await declareGroup(topic, group, groupOptions?.startFrom);
    },

    async publish(topic, messages, publishOptions = {}) {
      const { signal } = publishOptions;
      const settings = await settingsOf(topic);
      checkMessageSizes(topic, messages, settings.maxMessageBytes);
      const { js } = await ready();
      if (settings.maxUnacked === null) {
        for (let from = 0; from < messages.length; from += PIPELINE) {
          await Promise.all(messages.slice(from, from + PIPELINE).map((message) => publishOne(js, settings, message)));
        }
        return;
      }
      for (const message of messages) {
        let waitMs = 10;
        for (;;) {
          signal?.throwIfAborted();
          if (closed !== undefined) throw closedError();
          try {
            await publishOne(js, settings, message);
            break;
          } catch (err) {
            if (!(err instanceof BusError && err.code === 'queue_full') || settings.onFull === 'reject') throw err;
          }
          await pause(waitMs, signal);
          waitMs = Math.min(waitMs * 2, 200);
        }
      }
    },

    async consume(spec: SubscriptionSpec, handler: DeliveryHandler): Promise<Consumer> {
      checkSubscription(spec);
      const settings = await declareGroup(spec.topic, spec.group, spec.startFrom, Math.ceil(spec.visibilityTimeoutMs));
      const { nc, attempts } = await ready();
      const consumer = new NatsConsumer(spec, handler, {
        nc,
        names,
        partitions: settings.partitions,
        clock,
        attempts,
        deadLetters,
        onStopped: (stopped) => consumers.delete(stopped),
      });
      consumers.add(consumer);
      consumer.start();
      return consumer;
    },

    async stats(topic, group): Promise<GroupStats> {
      const settings = await settingsOf(topic);
      const { jsm } = await ready();
      const infos = await Promise.all(
        Array.from({ length: settings.partitions }, (_, p) => jsm.consumers.info(names.stream(topic), names.durable(group, p)).catch(() => undefined)),
      );
      let pending = 0;
      let inFlight = 0;
      for (const info of infos) {
        if (info === undefined) continue;
        pending += info.num_pending + info.num_ack_pending;
        inFlight += info.num_ack_pending;
      }
      return { topic, group, pending, inFlight, deadLetters: await deadLetters.count(topic, group) };
    },

    deadLetters,

    close() {
      closed ??= (async () => {
        await Promise.allSettled([...consumers].map((consumer) => consumer.stop({ graceMs: closeGraceMs })));
        const current = session;
        if (current !== undefined && ownsConnection) {
          const { nc } = await current.catch(() => ({ nc: undefined }));
          await nc?.close();
        }
      })();
      return closed;
    },
  };
  return transport;
}
