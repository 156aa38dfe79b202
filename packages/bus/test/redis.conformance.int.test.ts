import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, inject } from 'vitest';
import { createRedisStreamsTransport } from '../src/transports/redis-streams/index.js';
import { transportConformance } from './transport.conformance.js';

// One server for the run (the global setup's); this file's keys share a prefix no other file
// uses, and every test gets a fresh transport (its own connections) on it.
const url = inject('redisUrl');
const prefix = `bus-conformance:${randomUUID()}:`;
const admin = new Redis(url, { maxRetriesPerRequest: 1 });

afterAll(async () => {
  for await (const keys of admin.scanStream({ match: `${prefix}*`, count: 1000 })) {
    if ((keys as string[]).length > 0) await admin.del(...(keys as string[]));
  }
  await admin.quit();
});

transportConformance('redis-streams', async () => ({
  transport: createRedisStreamsTransport({ url, prefix, pollIntervalMs: 250, closeGraceMs: 1_000 }),
  cleanup: async () => undefined,
}));
