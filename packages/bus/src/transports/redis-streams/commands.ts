import type { Redis } from 'ioredis';
import { ACK_LUA, CLAIM_LUA, DECLARE_GROUP_LUA, DECLARE_TOPIC_LUA, FAIL_LUA, PUBLISH_LUA, PURGE_LUA, RELEASE_LUA, REPLAY_LUA, STATS_LUA } from './scripts.js';

const SCRIPTS = {
  agoraBusDeclareTopic: DECLARE_TOPIC_LUA,
  agoraBusDeclareGroup: DECLARE_GROUP_LUA,
  agoraBusPublish: PUBLISH_LUA,
  agoraBusClaim: CLAIM_LUA,
  agoraBusAck: ACK_LUA,
  agoraBusFail: FAIL_LUA,
  agoraBusRelease: RELEASE_LUA,
  agoraBusStats: STATS_LUA,
  agoraBusReplay: REPLAY_LUA,
  agoraBusPurge: PURGE_LUA,
} as const;

export type ScriptName = keyof typeof SCRIPTS;

/** Runs one of the transport's scripts: `run(name, keys, args)`, one EVALSHA (EVAL on a cache miss). */
export type ScriptRunner = (name: ScriptName, keys: readonly string[], args: readonly (string | number)[]) => Promise<unknown>;

type ScriptFn = (numberOfKeys: number, ...args: (string | number)[]) => Promise<unknown>;

/**
 * Registers the scripts on `redis` with `defineCommand` (key count given per call: the claim
 * and publish scripts take one key per partition) and returns a runner.
 */
export function defineScripts(redis: Redis): ScriptRunner {
  for (const [name, lua] of Object.entries(SCRIPTS)) redis.defineCommand(name, { lua });
  const commands = redis as unknown as Record<string, ScriptFn | undefined>;
  return (name, keys, args) => {
    const fn = commands[name];
    if (fn === undefined) throw new TypeError(`the Redis client has no ${name} command after defineCommand`);
    return fn.call(redis, keys.length, ...keys, ...args);
  };
}
