import { systemBusClock, type BusClock } from '../clock.js';
import { BusError } from '../errors.js';
import type { Consumer, DeliveryHandler, GroupStats, SubscriptionSpec, TopicSpec, Transport, TransportMessage } from '../transport.js';
import { MemoryConsumer } from './memory/consumer.js';
import { createMemoryDeadLetterStore } from './memory/dead-letters.js';
import { Group } from './memory/group.js';
import { Topic } from './memory/topic.js';
import { invalidOption as invalid } from './shared/errors.js';
import { DEFAULT_MAX_MESSAGE_BYTES } from './shared/validate.js';

export interface MemoryTransportOptions {
  /** Time for visibility timeouts, backoffs and timestamps; default the system clock. */
  readonly clock?: BusClock;
  /** How long `close()` lets running handlers finish; default 10 s. */
  readonly closeGraceMs?: number;
}

/** The memory transport: the contract, plus a look at how much it holds. */
export interface MemoryTransport extends Transport {
  readonly kind: 'memory';
  /** Log entries held across all topics; interest retention keeps this near the unsettled backlog. */
  retainedMessages(): number;
}

function positiveInteger(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!(Number.isInteger(value) && value >= 1) && value !== Number.POSITIVE_INFINITY) throw invalid(`${name} must be a positive integer, got ${value}`, { [name]: value });
  return value;
}

function checkSubscription(spec: SubscriptionSpec): void {
  if (!Number.isInteger(spec.maxInFlight) || spec.maxInFlight < 1) throw invalid(`maxInFlight must be a positive integer, got ${spec.maxInFlight}`, { maxInFlight: spec.maxInFlight });
  if (!(spec.visibilityTimeoutMs > 0)) throw invalid(`visibilityTimeoutMs must be positive, got ${spec.visibilityTimeoutMs}`, { visibilityTimeoutMs: spec.visibilityTimeoutMs });
  const attempts = spec.redelivery.maxAttempts;
  if (!Number.isInteger(attempts) || attempts < 1) throw invalid(`redelivery.maxAttempts must be a positive integer, got ${attempts}`, { maxAttempts: attempts });
}

/**
 * The whole transport contract in-process, for tests and single-process runs: a log per
 * partition, a cursor per group and partition, at most one message in flight per (group,
 * partition), interest retention, backpressure, visibility timeouts, redelivery and dead
 * letters. Nothing survives the process.
 *
 * It is built to be fast: per message, an append, one delivery object and the handler's own
 * promise; no timer per message (one visibility timer per consumer, one backoff timer per
 * nacked partition).
 *
 * Choices the contract leaves open:
 * - With no group declared, published messages are kept (bounded by `maxUnacked`) for the
 *   first group, which starts from them when it starts from 'earliest'.
 * - A nacked message keeps its partition through the backoff, so later messages with its
 *   key wait behind it (order first).
 * - A replayed dead letter is appended to the tail of its partition for its group alone:
 *   it is handled after what already waits there, in order with anything published after.
 *   Replays do not count against `maxUnacked`.
 * - A delivery released by a stopping consumer does not use up an attempt.
 * - A publish parked by `onFull: 'wait'` appends what fits as room appears; if its signal
 *   aborts, the part already appended stays.
 *
 * @example
 * const transport = createMemoryTransport();
 * await transport.declareTopic({ name: 'orders', partitions: 4 });
 * await transport.declareGroup('orders', 'billing');
 * await transport.publish('orders', [{ id: 'm1', key: 'order-1', headers: {}, body: '{}' }]);
 * const consumer = await transport.consume(
 *   { topic: 'orders', group: 'billing', maxInFlight: 8, visibilityTimeoutMs: 30_000,
 *     redelivery: { maxAttempts: 5, backoffMs: (n) => 100 * 2 ** n } },
 *   async (delivery) => { await bill(delivery.message.body); }, // returning acks
 * );
 */
export function createMemoryTransport(options: MemoryTransportOptions = {}): MemoryTransport {
  const clock = options.clock ?? systemBusClock;
  const closeGraceMs = options.closeGraceMs ?? 10_000;
  const topics = new Map<string, Topic>();
  const consumers = new Set<MemoryConsumer>();
  let closed = false;

  const deadLetters = createMemoryDeadLetterStore((entry) => {
    const topic = topics.get(entry.topic);
    const group = topic?.groups.get(entry.group);
    if (topic === undefined || group === undefined || closed) return false;
    topic.appendFor(group, entry.message);
    return true;
  });
  const ctx = { clock, deadLetters };

  const topicOf = (name: string): Topic => {
    if (closed) throw new BusError('transport_closed', 'the memory transport is closed');
    const topic = topics.get(name);
    if (topic === undefined) throw new BusError('unknown_topic', `topic ${name} is not declared`, { topic: name });
    return topic;
  };

  const declareGroup = (topicName: string, name: string, startFrom: 'earliest' | 'latest' = 'earliest'): Group => {
    const topic = topicOf(topicName);
    let group = topic.groups.get(name);
    if (group === undefined) {
      group = new Group(name, topic, ctx, startFrom);
      topic.groups.set(name, group);
      topic.groupList.push(group);
    }
    return group;
  };

  return {
    kind: 'memory',

    async declareTopic(spec: TopicSpec) {
      if (closed) throw new BusError('transport_closed', 'the memory transport is closed');
      if (topics.has(spec.name)) return;
      if (typeof spec.name !== 'string' || spec.name === '') throw invalid('a topic needs a name', { name: spec.name });
      if (spec.onFull !== undefined && spec.onFull !== 'wait' && spec.onFull !== 'reject') throw invalid(`onFull must be 'wait' or 'reject'`, { onFull: spec.onFull });
      const partitions = positiveInteger(spec.partitions, 1, 'partitions');
      if (partitions === Number.POSITIVE_INFINITY) throw invalid('partitions must be finite', { partitions });
      topics.set(
        spec.name,
        new Topic({
          name: spec.name,
          partitions,
          maxMessageBytes: positiveInteger(spec.maxMessageBytes, DEFAULT_MAX_MESSAGE_BYTES, 'maxMessageBytes'),
          maxUnacked: positiveInteger(spec.maxUnacked, Number.POSITIVE_INFINITY, 'maxUnacked'),
          onFull: spec.onFull ?? 'reject',
        }),
      );
    },

    async declareGroup(topic, group, groupOptions) {
      declareGroup(topic, group, groupOptions?.startFrom);
    },

    async publish(topicName: string, messages: readonly TransportMessage[], publishOptions?: { signal?: AbortSignal }) {
      const topic = topicOf(topicName);
      topic.checkSizes(messages);
      await topic.publish(messages, publishOptions?.signal);
    },

    async consume(spec: SubscriptionSpec, handler: DeliveryHandler): Promise<Consumer> {
      checkSubscription(spec);
      const group = declareGroup(spec.topic, spec.group, spec.startFrom);
      const consumer = new MemoryConsumer(spec, group, handler, clock, (stopped) => consumers.delete(stopped));
      consumers.add(consumer);
      group.addConsumer(consumer);
      return consumer;
    },

    async stats(topicName: string, groupName: string): Promise<GroupStats> {
      const topic = topicOf(topicName);
      const group = topic.groups.get(groupName);
      return {
        topic: topicName,
        group: groupName,
        pending: group === undefined ? 0 : topic.pending(group),
        inFlight: group?.inFlight ?? 0,
        deadLetters: deadLetters.count(topicName, groupName),
      };
    },

    deadLetters,

    retainedMessages() {
      let total = 0;
      for (const topic of topics.values()) total += topic.retained;
      return total;
    },

    async close() {
      if (closed) return;
      closed = true;
      const reason = new BusError('transport_closed', 'the memory transport is closed');
      for (const topic of topics.values()) topic.rejectWaiters(reason);
      await Promise.all([...consumers].map((consumer) => consumer.stop({ graceMs: closeGraceMs })));
      for (const topic of topics.values()) for (const group of topic.groupList) group.clearTimers();
    },
  };
}
