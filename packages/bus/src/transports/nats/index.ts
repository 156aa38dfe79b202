// The NATS JetStream transport of @agora/bus. Everything not exported here is internal.
export { createNatsTransport, type NatsTransport, type NatsTransportOptions } from './transport.js';
export { tokenOf } from './names.js';
