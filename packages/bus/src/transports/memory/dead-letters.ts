import type { DeadLetter, DeadLetterStore, TransportMessage } from '../../transport.js';

/** One failed attempt, as a dead letter lists it. */
export interface AttemptError {
  readonly at: string;
  readonly attempt: number;
  readonly error: string;
}

/** The memory dead letter queue: the contract's store, plus `add` for the groups. */
export interface MemoryDeadLetterStore extends DeadLetterStore {
  add(entry: { topic: string; group: string; message: TransportMessage; attempts: number; errors: readonly AttemptError[]; deadAt: string }): DeadLetter;
  /** Entries of one group, for stats. */
  count(topic: string, group: string): number;
}

/**
 * Every group's dead letters in one insertion-ordered map. Ids are a zero-padded counter, so
 * they sort as they were made and `list({ after })` pages by comparing them.
 *
 * @param replayTo puts the message back to its group; false when the group is gone.
 * @example
 * const store = createMemoryDeadLetterStore((dl) => topics.replay(dl));
 */
export function createMemoryDeadLetterStore(replayTo: (entry: DeadLetter) => boolean): MemoryDeadLetterStore {
  const entries = new Map<string, DeadLetter>();
  let counter = 0;

  const matches = (entry: DeadLetter, filter: { topic?: string; group?: string }) =>
    (filter.topic === undefined || entry.topic === filter.topic) && (filter.group === undefined || entry.group === filter.group);

  return {
    add(entry) {
      const id = `dl-${String(++counter).padStart(12, '0')}`;
      const letter: DeadLetter = { id, ...entry };
      entries.set(id, letter);
      return letter;
    },
    count(topic, group) {
      let n = 0;
      for (const entry of entries.values()) if (entry.topic === topic && entry.group === group) n++;
      return n;
    },
    async list(filter = {}) {
      const limit = filter.limit ?? Number.POSITIVE_INFINITY;
      const found: DeadLetter[] = [];
      for (const entry of entries.values()) {
        if (found.length >= limit) break;
        if (filter.after !== undefined && entry.id <= filter.after) continue;
        if (matches(entry, filter)) found.push(entry);
      }
      return found;
    },
    async get(id) {
      return entries.get(id);
    },
    async replay(id) {
      const entry = entries.get(id);
      if (entry === undefined || !replayTo(entry)) return false;
      entries.delete(id);
      return true;
    },
    async purge(filter) {
      if (filter.id !== undefined) {
        const entry = entries.get(filter.id);
        if (entry === undefined || !matches(entry, filter)) return 0;
        entries.delete(filter.id);
        return 1;
      }
      let n = 0;
      for (const [id, entry] of entries) {
        if (matches(entry, filter)) {
          entries.delete(id);
          n++;
        }
      }
      return n;
    },
  };
}
