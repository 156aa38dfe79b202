export type {
  Consumer,
  DeadLetter,
  DeadLetterStore,
  Delivery,
  DeliveryHandler,
  GroupStats,
  RedeliveryPolicy,
  SubscriptionSpec,
  TopicSpec,
  Transport,
  TransportMessage,
} from './transport.js';
export { BusError, BusErrorCodes, isBusError, type BusErrorCode } from './errors.js';
export { partitionOf } from './partition.js';
export { systemBusClock, type BusClock } from './clock.js';
export { createMemoryTransport, type MemoryTransport, type MemoryTransportOptions } from './transports/memory.js';
export { createTransport, type TransportDeps } from './transports/index.js';
export { createPostgresTransport, publishWithin, type PostgresTransport, type PostgresTransportOptions } from './transports/postgres/index.js';
export { decodeEnvelope, encodeEnvelope, newEnvelope, type Envelope } from './envelope.js';
export { defineMessage, MessageCatalog, type MessageDefinition } from './messages.js';
export { createBus, defaultRedelivery, prepareMessage, type PrepareExtra, type Bus, type BusObserver, type BusOptions, type HandlerContext, type SubscribeOptions } from './bus.js';
export { memoryDedupStore, postgresDedupStore, type DedupStore } from './idempotent.js';
export { enqueue, outboxChannel, outboxDdl } from './outbox/outbox.js';
export { createOutboxRelay, type OutboxRelay, type OutboxRelayOptions } from './outbox/relay.js';
export { createRedisStreamsTransport, redisStreamsKeys, type RedisStreamsTransport, type RedisStreamsTransportOptions } from './transports/redis-streams/index.js';
export { createNatsTransport, type NatsTransport, type NatsTransportOptions } from './transports/nats/index.js';
export { busMetrics, groupMetrics, outboxMetrics } from './prometheus.js';
