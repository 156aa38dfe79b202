import type { JetStreamClient, JetStreamManager, StoredMsg } from '@nats-io/jetstream';
import { RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { headers } from '@nats-io/transport-node';
import type { DeadLetter, DeadLetterStore, TransportMessage } from '../../transport.js';
import type { AttemptError } from './attempts.js';
import { DEAD_HEADER, decodeMessage, encodeMeta, MESSAGE_HEADER, type Names } from './names.js';

/** What {@link DEAD_HEADER} carries. */
interface DeadMeta {
  readonly topic: string;
  readonly group: string;
  readonly attempts: number;
  readonly errors: readonly AttemptError[];
  readonly deadAt: string;
}

/** The dead letter store of the nats transport, plus `add` and `count` for consumers and stats. */
export interface NatsDeadLetterStore extends DeadLetterStore {
  add(entry: DeadMeta & { readonly message: TransportMessage }): Promise<void>;
  count(topic: string, group: string): Promise<number>;
}

const DEFAULT_LIST_LIMIT = 100;

function toDeadLetter(stored: StoredMsg): DeadLetter {
  const meta = JSON.parse(stored.header.get(DEAD_HEADER)) as DeadMeta;
  return {
    id: String(stored.seq),
    topic: meta.topic,
    group: meta.group,
    message: decodeMessage(stored.header.get(MESSAGE_HEADER), stored.string(), ''),
    attempts: meta.attempts,
    errors: meta.errors,
    deadAt: meta.deadAt,
  };
}

function seqOf(id: string): number | undefined {
  return /^[1-9][0-9]{0,15}$/.test(id) ? Number(id) : undefined;
}

/**
 * Every group's dead letters in one stream, `{prefix}__dlq`, one message per entry on the
 * subject `{prefix}._dlq.{topic}.{group}`: the body is the message's, headers carry its id, key
 * and headers and the entry (topic, group, attempts, every error, deadAt). The entry id is its
 * stream sequence, so ids sort as entries were made and `list({ after })` pages by them.
 *
 * `list` walks the stream with `next_by_subj` gets, one request per entry: fine for an operator
 * paging 100 at a time, not for bulk export. `replay` publishes the message again to its
 * partition with the `Agora-Only-Group` header: the group handles it (attempts from 1) behind what
 * already waits there; other groups' consumers acknowledge it without calling their handler.
 *
 * @param session the transport's connection, made once the DLQ stream exists.
 * @param republish publishes a replayed message; false when its topic is gone.
 * @example
 * const store = createNatsDeadLetterStore(names, session, republish);
 * for (const entry of await store.list({ topic: 'posts' })) await store.replay(entry.id);
 */
export function createNatsDeadLetterStore(
  names: Names,
  session: () => Promise<{ readonly js: JetStreamClient; readonly jsm: JetStreamManager }>,
  republish: (entry: DeadLetter) => Promise<boolean>,
): NatsDeadLetterStore {
  const stream = names.deadLetterStream;

  async function get(id: string): Promise<DeadLetter | undefined> {
    const { jsm } = await session();
    const seq = seqOf(id);
    if (seq === undefined) return undefined;
    const stored = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
    return stored === null ? undefined : toDeadLetter(stored);
  }

  return {
    async add(entry) {
      const { js } = await session();
      const h = headers();
      h.set(MESSAGE_HEADER, encodeMeta(entry.message));
      const meta: DeadMeta = { topic: entry.topic, group: entry.group, attempts: entry.attempts, errors: entry.errors, deadAt: entry.deadAt };
      h.set(DEAD_HEADER, JSON.stringify(meta));
      await js.publish(names.deadLetterSubject(entry.topic, entry.group), entry.message.body, { headers: h });
    },

    async count(topic, group) {
      const { jsm } = await session();
      const subject = names.deadLetterSubject(topic, group);
      const info = await jsm.streams.info(stream, { subjects_filter: subject });
      return info.state.subjects?.[subject] ?? 0;
    },

    async list(filter = {}) {
      const { jsm } = await session();
      const limit = Math.max(1, Math.min(filter.limit ?? DEFAULT_LIST_LIMIT, 10_000));
      const subject = names.deadLetterSubject(filter.topic, filter.group);
      const found: DeadLetter[] = [];
      let seq = filter.after === undefined ? 1 : (seqOf(filter.after) ?? 0) + 1;
      while (found.length < limit) {
        // The 2.9 server answers next_by_subj on STREAM.MSG.GET; the client's type lists it for direct gets only.
        const query = { seq, next_by_subj: subject } as unknown as { seq: number };
        const stored = await jsm.streams.getMessage(stream, query).catch(() => null);
        if (stored === null) break;
        found.push(toDeadLetter(stored));
        seq = stored.seq + 1;
      }
      return found;
    },

    get,

    async replay(id) {
      const entry = await get(id);
      if (entry === undefined) return false;
      if (!(await republish(entry))) return false;
      const { jsm } = await session();
      return jsm.streams.deleteMessage(stream, Number(entry.id), false).catch(() => false);
    },

    async purge(filter) {
      const { jsm } = await session();
      if (filter.id !== undefined) {
        const entry = await get(filter.id);
        if (entry === undefined) return 0;
        if ((filter.topic !== undefined && entry.topic !== filter.topic) || (filter.group !== undefined && entry.group !== filter.group)) return 0;
        return (await jsm.streams.deleteMessage(stream, Number(entry.id), false).catch(() => false)) ? 1 : 0;
      }
      const response = await jsm.streams.purge(stream, { filter: names.deadLetterSubject(filter.topic, filter.group) });
      return response.purged;
    },
  };
}

/** Makes the dead letter stream unless it exists. */
export async function ensureDeadLetterStream(jsm: JetStreamManager, names: Names): Promise<void> {
  try {
    await jsm.streams.info(names.deadLetterStream);
  } catch {
    await jsm.streams
      .add({ name: names.deadLetterStream, subjects: [`${names.prefix}._dlq.>`], retention: RetentionPolicy.Limits, storage: StorageType.File })
      .catch(async (err: unknown) => {
        await jsm.streams.info(names.deadLetterStream).catch(() => Promise.reject(err));
      });
  }
}
