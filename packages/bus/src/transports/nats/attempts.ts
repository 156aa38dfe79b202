import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { DiscardPolicy, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import type { Names } from './names.js';

/** One failed attempt, as a dead letter lists it. */
export interface AttemptError {
  readonly at: string;
  readonly attempt: number;
  readonly error: string;
}

const WEEK_NS = 7 * 24 * 3_600 * 1e9;

/**
 * The errors of a message's failed attempts, per (topic, group, stream sequence), kept in a
 * stream used as a key-value store (`max_msgs_per_subject: 1`, each write the whole list):
 * JetStream counts deliveries (`max_deliver`) but keeps no reasons, and the next attempt may
 * run in another process. Only one consumer holds a message at a time (`max_ack_pending: 1`),
 * so read-append-write needs no compare-and-set. Entries expire after a week as a backstop;
 * they are purged when the message is acked or dead-lettered.
 */
export class AttemptLog {
  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly names: Names,
  ) {}

  static async ensure(jsm: JetStreamManager, names: Names): Promise<void> {
    try {
      await jsm.streams.info(names.attemptStream);
    } catch {
      await jsm.streams.add({
        name: names.attemptStream,
        subjects: [`${names.prefix}._attempts.>`],
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        max_msgs_per_subject: 1,
        discard: DiscardPolicy.Old,
        max_age: WEEK_NS,
      }).catch(async (err: unknown) => {
        // Another process made it meanwhile.
        await jsm.streams.info(names.attemptStream).catch(() => Promise.reject(err));
      });
    }
  }

  async read(topic: string, group: string, seq: number): Promise<AttemptError[]> {
    const stored = await this.jsm.streams.getMessage(this.names.attemptStream, { last_by_subj: this.names.attemptSubject(topic, group, seq) }).catch(() => null);
    return stored === null ? [] : (stored.json<AttemptError[]>());
  }

  /** Appends `entry` (after `known` when given, to save a read on a first failure) and returns the list. */
  async append(topic: string, group: string, seq: number, entry: AttemptError, known?: readonly AttemptError[]): Promise<AttemptError[]> {
    const list = [...(known ?? (await this.read(topic, group, seq))), entry];
    await this.js.publish(this.names.attemptSubject(topic, group, seq), JSON.stringify(list));
    return list;
  }

  async clear(topic: string, group: string, seq: number): Promise<void> {
    await this.jsm.streams.purge(this.names.attemptStream, { filter: this.names.attemptSubject(topic, group, seq) });
  }
}
