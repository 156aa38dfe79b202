import type { Redis } from 'ioredis';
import type { DeadLetter, DeadLetterStore } from '../../transport.js';
import type { ScriptRunner } from './commands.js';
import { channelKey, redisStreamsKeys, topicsKey } from './options.js';

const DEFAULT_LIST_LIMIT = 100;
const PAGE = 200;
const STREAM_ID = /^[0-9]{1,20}-[0-9]{1,20}$/;

/** A dead letter id: `<dlq stream entry id>:<topic>`, so the id alone finds its topic's stream. */
interface EntryRef {
  readonly entry: string;
  readonly topic: string;
}

function parseId(id: string): EntryRef | undefined {
  const colon = id.indexOf(':');
  if (colon < 0) return undefined;
  const entry = id.slice(0, colon);
  return STREAM_ID.test(entry) ? { entry, topic: id.slice(colon + 1) } : undefined;
}

function compareEntry(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  const ms = BigInt(am) - BigInt(bm);
  if (ms !== 0n) return ms < 0n ? -1 : 1;
  const seq = BigInt(as) - BigInt(bs);
  return seq === 0n ? 0 : seq < 0n ? -1 : 1;
}

/** Order of ids across topics: by stream entry (about the time it died), then by topic. */
function compareRefs(a: EntryRef, b: EntryRef): number {
  return compareEntry(a.entry, b.entry) || (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0);
}

type RawEntry = [id: string, fields: string[]];

function toDeadLetter(topic: string, [entry, fields]: RawEntry): DeadLetter {
  const map = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) map.set(fields[i] as string, fields[i + 1] as string);
  const key = map.get('key');
  const raw = JSON.parse(map.get('errors') ?? '[]') as unknown;
  // cjson writes an empty array as {}; the scripts never bury without an error, but be safe.
  const errors = (Array.isArray(raw) ? raw : []) as { at: number; attempt: number; error: string }[];
  const message = { id: map.get('id') ?? '', headers: JSON.parse(map.get('headers') ?? '{}') as Record<string, string>, body: map.get('body') ?? '' };
  return {
    id: `${entry}:${topic}`,
    topic,
    group: map.get('group') ?? '',
    message: key === undefined ? message : { ...message, key },
    attempts: Number(map.get('attempts') ?? 0),
    errors: errors.map((e) => ({ at: new Date(Number(e.at)).toISOString(), attempt: Number(e.attempt), error: String(e.error) })),
    deadAt: new Date(Number(map.get('deadAt') ?? 0)).toISOString(),
  };
}

export interface RedisDeadLetterContext {
  readonly redis: Redis;
  readonly run: ScriptRunner;
  readonly prefix: string;
  /** Partitions of a declared topic, or undefined. */
  readonly partitionsOf: (topic: string) => Promise<number | undefined>;
  readonly ready: () => void;
}

/**
 * The dead letters, one stream per topic (`<prefix>{<topic>}:dlq`, in the topic's slot, so
 * burying is part of the settling script), each entry a copy of the message with the group's
 * errors, oldest first. Ids are `<entry id>:<topic>`; `list` orders by entry id (about the time
 * of death), then topic, and pages with `after`. `replay` appends the message again to the
 * tail of the partition it had, for its group alone, attempts from 0 (behind what was
 * published since: an operator's decision, not part of the stream's order).
 *
 * @example
 * const store = createRedisDeadLetterStore({ redis, run, prefix: 'bus:', partitionsOf, ready });
 * for (const entry of await store.list({ topic: 'orders', limit: 50 })) await store.replay(entry.id);
 */
export function createRedisDeadLetterStore(ctx: RedisDeadLetterContext): DeadLetterStore {
  const channel = channelKey(ctx.prefix);

  async function topicsFor(topic: string | undefined): Promise<string[]> {
    if (topic !== undefined) return [topic];
    return (await ctx.redis.smembers(topicsKey(ctx.prefix))).sort();
  }

  /** Up to `limit` entries of one topic after `after`, matching `group`. */
  async function listTopic(topic: string, group: string | undefined, limit: number, after: EntryRef | undefined): Promise<DeadLetter[]> {
    const key = redisStreamsKeys(ctx.prefix, topic).dlq;
    let from = '-';
    if (after !== undefined) from = after.topic < topic ? after.entry : `(${after.entry}`;
    const found: DeadLetter[] = [];
    while (found.length < limit) {
      const page = (await ctx.redis.xrange(key, from, '+', 'COUNT', PAGE)) as RawEntry[];
      for (const raw of page) {
        const letter = toDeadLetter(topic, raw);
        if (group === undefined || letter.group === group) found.push(letter);
        if (found.length >= limit) break;
      }
      const last = page[page.length - 1];
      if (page.length < PAGE || last === undefined) break;
      from = `(${last[0]}`;
    }
    return found;
  }

  return {
    async list(filter = {}) {
      ctx.ready();
      const limit = Math.max(1, Math.min(filter.limit ?? DEFAULT_LIST_LIMIT, 10_000));
      const after = filter.after === undefined ? undefined : parseId(filter.after);
      const all: DeadLetter[] = [];
      for (const topic of await topicsFor(filter.topic)) all.push(...(await listTopic(topic, filter.group, limit, after)));
      return all.sort((a, b) => compareRefs(parseId(a.id) as EntryRef, parseId(b.id) as EntryRef)).slice(0, limit);
    },

    async get(id) {
      ctx.ready();
      const ref = parseId(id);
      if (ref === undefined) return undefined;
      const [raw] = (await ctx.redis.xrange(redisStreamsKeys(ctx.prefix, ref.topic).dlq, ref.entry, ref.entry)) as RawEntry[];
      return raw === undefined ? undefined : toDeadLetter(ref.topic, raw);
    },

    async replay(id) {
      ctx.ready();
      const ref = parseId(id);
      if (ref === undefined) return false;
      const partitions = await ctx.partitionsOf(ref.topic);
      if (partitions === undefined) return false;
      const keys = redisStreamsKeys(ctx.prefix, ref.topic);
      const streams = Array.from({ length: partitions }, (_, p) => keys.stream(p));
      const done = await ctx.run('agoraBusReplay', [keys.meta, keys.groups, keys.dlq, ...streams], [ref.entry, ref.topic, channel]);
      return done === 1;
    },

    async purge(filter) {
      ctx.ready();
      const groupArgs = filter.group === undefined ? ['0', ''] : ['1', filter.group];
      if (filter.id !== undefined) {
        const ref = parseId(filter.id);
        if (ref === undefined || (filter.topic !== undefined && filter.topic !== ref.topic)) return 0;
        const keys = redisStreamsKeys(ctx.prefix, ref.topic);
        return Number(await ctx.run('agoraBusPurge', [keys.meta, keys.dlq], [ref.entry, ...groupArgs]));
      }
      let count = 0;
      for (const topic of await topicsFor(filter.topic)) {
        const keys = redisStreamsKeys(ctx.prefix, topic);
        count += Number(await ctx.run('agoraBusPurge', [keys.meta, keys.dlq], ['', ...groupArgs]));
      }
      return count;
    },
  };
}
