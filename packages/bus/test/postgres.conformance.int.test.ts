import { afterAll, beforeAll, inject } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@agora/db/testing';
import { createPostgresTransport } from '../src/transports/postgres/index.js';
import { transportConformance } from './transport.conformance.js';

// One database for the file; every test gets a fresh transport (its own pool and LISTEN
// connection) on it, and the suite keeps tests apart by unique topic and group names.
let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase(inject('databaseUrl'));
});

afterAll(async () => {
  await db.drop();
});

transportConformance('postgres', async () => ({
  transport: createPostgresTransport({ url: db.url, pollIntervalMs: 250, closeGraceMs: 1_000 }),
  cleanup: async () => undefined,
}));
