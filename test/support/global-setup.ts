import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { EmbeddedPostgres, type DbLogger } from '@agora/db';
import { startNatsServer } from './nats.js';
import { startRedisServer } from './redis.js';
import { claimTestDir, reapOrphanedServers, TEST_PG_PREFIX } from './reap.js';

// Startup problems go to the console; PostgreSQL's own chatter stays out of test output.
const logger: DbLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: (obj: object | string, msg?: string) => console.warn('[db]', msg ?? obj),
  error: (obj: object | string, msg?: string) => console.error('[db]', msg ?? obj, typeof obj === 'object' ? obj : ''),
};

/**
 * One PostgreSQL server for the whole run: DATABASE_URL when set, otherwise an embedded server
 * in a fresh temp dir, stopped and removed at teardown. If it cannot start, the run fails here:
 * integration tests are never skipped for want of a database.
 */
async function startPostgres(project: TestProject): Promise<() => Promise<void>> {
  const given = process.env.DATABASE_URL;
  if (given !== undefined && given !== '') {
    project.provide('databaseUrl', given);
    return async () => undefined;
  }

  await reapOrphanedServers();
  const dir = await mkdtemp(join(tmpdir(), TEST_PG_PREFIX));
  await claimTestDir(dir);
  const server = new EmbeddedPostgres({
    dataDir: join(dir, 'data'),
    database: 'agora_test',
    logger,
    // Durability is worthless for a throwaway cluster; these make CREATE DATABASE and commits fast.
    settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off', max_connections: 300 },
  });
  try {
    const { url } = await server.start();
    project.provide('databaseUrl', url);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return async () => {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  };
}

/**
 * One Redis server for the whole run: REDIS_URL when set, otherwise redis-server from PATH on
 * a free loopback port, stopped at teardown. Without either the run fails: never skipped.
 */
async function startRedis(project: TestProject): Promise<() => Promise<void>> {
  const given = process.env.REDIS_URL;
  if (given !== undefined && given !== '') {
    project.provide('redisUrl', given);
    return async () => undefined;
  }
  const server = await startRedisServer();
  project.provide('redisUrl', server.url);
  return () => server.stop();
}

/**
 * One NATS server (JetStream on) for the whole run: NATS_URL when set, otherwise nats-server on
 * a free loopback port with its store in a temp dir, stopped and removed at teardown. Without
 * either the run fails: never skipped.
 */
async function startNats(project: TestProject): Promise<() => Promise<void>> {
  const given = process.env.NATS_URL;
  if (given !== undefined && given !== '') {
    project.provide('natsUrl', given);
    return async () => undefined;
  }
  const server = await startNatsServer();
  project.provide('natsUrl', server.url);
  return () => server.stop();
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // Redis and NATS first: they start in milliseconds, so a missing binary fails the run at once.
  const stopRedis = await startRedis(project);
  let stopNats: () => Promise<void>;
  try {
    stopNats = await startNats(project);
  } catch (err) {
    await stopRedis();
    throw err;
  }
  let stopPostgres: () => Promise<void>;
  try {
    stopPostgres = await startPostgres(project);
  } catch (err) {
    await Promise.all([stopNats(), stopRedis()]);
    throw err;
  }
  return async () => {
    await Promise.all([stopPostgres(), stopNats(), stopRedis()]);
  };
}
