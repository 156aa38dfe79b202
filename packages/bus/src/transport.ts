/**
 * The contract every transport (memory, postgres, redis-streams, nats) implements, and the
 * one conformance suite (test/transport.conformance.ts) checks. Transports move opaque
 * messages; envelopes, schemas, request/reply, the outbox and idempotency are built on top
 * of this, once, in the bus layer.
 *
 * The model is the one Kafka, Redis Streams and JetStream share: a **topic** is an
 * append-only log split into `partitions`; a **group** (subscription) receives every message
 * of the topic once, its consumers competing for them; a message's `key` picks its partition,
 * and within a group at most one message per partition is in flight at a time, so messages
 * with the same key are handled in order while different keys run in parallel. A queue
 * (point-to-point) is a topic with one group; publish/subscribe is a topic with several.
 */

/** A topic, declared once before use (publishing to an undeclared topic is an error). */
export interface TopicSpec {
  readonly name: string;
  /** Ordering lanes; default 1 (total order). A message's key picks one by hash. */
  readonly partitions?: number;
  /** Largest message accepted, body and headers together; default 256 KiB. */
  readonly maxMessageBytes?: number;
  /**
   * Most messages held that some group has not yet acknowledged (backpressure on the
   * publisher); default unbounded. When full, `publish` waits or fails per `onFull`.
   */
  readonly maxUnacked?: number;
  /** What `publish` does when `maxUnacked` is reached; default 'reject' (`queue_full`). */
  readonly onFull?: 'wait' | 'reject';
}

/** A message as transports carry it. */
export interface TransportMessage {
  /** Unique, made by the publisher (the bus uses the envelope id); the dedup key of consumers. */
  readonly id: string;
  /** Ordering key: same key, same partition, handled in order. */
  readonly key?: string;
  readonly headers: Readonly<Record<string, string>>;
  /** The serialized envelope. */
  readonly body: string;
}

/** When and how often a group retries a message its handler failed. */
export interface RedeliveryPolicy {
  /** Deliveries in all before the message goes to the dead letter queue (>= 1). */
  readonly maxAttempts: number;
  /** Delay before delivery number `attempt + 1`, after `attempt` failed. */
  backoffMs(attempt: number): number;
}

export interface SubscriptionSpec {
  readonly topic: string;
  readonly group: string;
  /** Messages this consumer holds at once, prefetched or being handled (>= 1). */
  readonly maxInFlight: number;
  /** A delivery not settled within this is given to another consumer (the holder is presumed dead). */
  readonly visibilityTimeoutMs: number;
  readonly redelivery: RedeliveryPolicy;
  /** Where a new group starts: the first message still held, or only messages published from now on. Default 'earliest'. */
  readonly startFrom?: 'earliest' | 'latest';
}

/** One delivery of one message to one consumer of a group. */
export interface Delivery {
  readonly message: TransportMessage;
  readonly topic: string;
  readonly group: string;
  readonly partition: number;
  /** 1 on the first delivery; counts every delivery, timeouts included. */
  readonly attempt: number;
  /** Aborted when the consumer is stopping hard or the visibility timeout passed. */
  readonly signal: AbortSignal;
  /** Done: never delivered to this group again. */
  ack(): Promise<void>;
  /** Failed: redelivered per the group's policy, or dead-lettered after the last attempt. */
  nack(error: unknown, options?: { delayMs?: number }): Promise<void>;
  /** Straight to the dead letter queue, whatever attempts are left (a poison or invalid message). */
  deadLetter(reason: string): Promise<void>;
}

/**
 * Called per delivery. Returning without settling acks; throwing nacks with the error. The
 * transport calls handlers for different partitions concurrently, up to `maxInFlight`.
 */
export type DeliveryHandler = (delivery: Delivery) => Promise<void>;

/** A running consumer of a group. */
export interface Consumer {
  /** Stop fetching, let handlers in flight finish (and settle) until `graceMs`, then release the rest for redelivery. */
  stop(options?: { graceMs?: number }): Promise<void>;
  /** Messages held now: fetched, not yet settled. */
  readonly inFlight: number;
}

/** A message the group gave up on, with why. */
export interface DeadLetter {
  /** Id of the dead letter entry (not the message id, which may die in several groups). */
  readonly id: string;
  readonly topic: string;
  readonly group: string;
  readonly message: TransportMessage;
  readonly attempts: number;
  /** One per failed attempt, oldest first; a dead-lettered-at-once message has one. */
  readonly errors: readonly { readonly at: string; readonly attempt: number; readonly error: string }[];
  readonly deadAt: string;
}

/** The dead letter queue of a transport: every group's, listed, inspected, replayed, purged. */
export interface DeadLetterStore {
  list(filter?: { topic?: string; group?: string; limit?: number; after?: string }): Promise<readonly DeadLetter[]>;
  get(id: string): Promise<DeadLetter | undefined>;
  /** Delivers the message to its group again (attempts start over) and removes the entry. */
  replay(id: string): Promise<boolean>;
  /** Removes entries; all of a topic/group when no id. Resolves to how many. */
  purge(filter: { id?: string; topic?: string; group?: string }): Promise<number>;
}

/** Depth of a group, for lag metrics and `agora dlq`. */
export interface GroupStats {
  readonly topic: string;
  readonly group: string;
  /** Published, not yet acknowledged by this group (in flight included). */
  readonly pending: number;
  readonly inFlight: number;
  readonly deadLetters: number;
}

/**
 * A message transport. Adapters: `memory` (tests), `postgres` (durable; embedded mode),
 * `redis-streams`, `nats` (JetStream). Chosen by `createTransport(url)`.
 */
export interface Transport {
  readonly kind: 'memory' | 'postgres' | 'redis-streams' | 'nats';
  /** Idempotent; re-declaring with other settings keeps the first (partitions never change). */
  declareTopic(spec: TopicSpec): Promise<void>;
  /** Idempotent. From now on the topic keeps each message until this group has settled it. */
  declareGroup(topic: string, group: string, options?: { startFrom?: 'earliest' | 'latest' }): Promise<void>;
  /**
   * Appends messages in order. Messages with the same key keep this order for every group.
   * @throws BusError `unknown_topic`, `message_too_large`, `queue_full`
   */
  publish(topic: string, messages: readonly TransportMessage[], options?: { signal?: AbortSignal }): Promise<void>;
  consume(subscription: SubscriptionSpec, handler: DeliveryHandler): Promise<Consumer>;
  stats(topic: string, group: string): Promise<GroupStats>;
  readonly deadLetters: DeadLetterStore;
  /** Stops every consumer it started (gracefully) and releases connections. */
  close(): Promise<void>;
}
