import { randomUUID } from 'node:crypto';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, inject } from 'vitest';
import { createNatsTransport } from '../src/transports/nats/index.js';
import { transportConformance } from './transport.conformance.js';

// One prefix for the file (so files sharing the server keep apart); every test gets a fresh
// transport with its own connection, and the suite keeps tests apart by unique topic names.
const prefix = `conf-${randomUUID().slice(0, 8)}`;
let admin: NatsConnection;

/** Deletes every stream of this file's prefix. */
async function dropStreams(): Promise<void> {
  const jsm = await jetstreamManager(admin);
  for await (const name of jsm.streams.names()) {
    if (name.startsWith(`${prefix}_`)) await jsm.streams.delete(name);
  }
}

beforeAll(async () => {
  admin = await connect({ servers: inject('natsUrl') });
});

afterAll(async () => {
  await dropStreams();
  await admin.close();
});

transportConformance('nats', async () => ({
  transport: createNatsTransport({ url: inject('natsUrl'), prefix, closeGraceMs: 1_000 }),
  cleanup: dropStreams,
}));
