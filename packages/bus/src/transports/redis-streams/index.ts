// The Redis Streams transport of @agora/bus. Everything not exported here is internal.
export { createRedisStreamsTransport, type RedisStreamsTransport } from './transport.js';
export { redisStreamsKeys, type RedisStreamsTransportOptions, type TopicKeys } from './options.js';
