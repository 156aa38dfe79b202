// The PostgreSQL transport of @agora/bus. Everything not exported here is internal.
export { createPostgresTransport, type PostgresTransport } from './transport.js';
export { publishWithin, messageBytes, type PublishWithinOptions } from './publish.js';
export { createPostgresDeadLetterStore } from './dead-letters.js';
export { channelOf, type PostgresTransportOptions } from './options.js';
