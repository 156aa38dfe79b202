import type { TransportMessage } from '../../transport.js';

/** One message in a partition, with its sequence number. */
export interface LogEntry {
  readonly seq: number;
  readonly message: TransportMessage;
  /** Set on a replayed message: only this group handles it; the others skip it. */
  readonly onlyGroup: string | undefined;
}

/**
 * The append-only log of one partition. Entries below `start` are dropped (every group has
 * settled them); the array is compacted once the dropped prefix outweighs the live part, so
 * both append and drop stay amortised O(1) and memory follows what is retained.
 */
export class PartitionLog {
  private entries: (LogEntry | undefined)[] = [];
  /** Sequence number of `entries[0]`. */
  private offset = 0;
  /** First retained sequence number. */
  start = 0;
  /** Sequence number the next append gets. */
  next = 0;
  /** Retained entries aimed at one group (replays); while 0, pending counts need no scan. */
  targeted = 0;

  get size(): number {
    return this.next - this.start;
  }

  append(message: TransportMessage, onlyGroup?: string): LogEntry {
    const entry: LogEntry = { seq: this.next++, message, onlyGroup };
    this.entries.push(entry);
    if (onlyGroup !== undefined) this.targeted++;
    return entry;
  }

  /** The entry at `seq`, if retained. */
  at(seq: number): LogEntry | undefined {
    return seq >= this.start ? this.entries[seq - this.offset] : undefined;
  }

  /** Drops every entry below `seq`; returns how many went. */
  dropBelow(seq: number): number {
    const upTo = Math.min(seq, this.next);
    const dropped = upTo - this.start;
    if (dropped <= 0) return 0;
    for (let s = this.start; s < upTo; s++) {
      const index = s - this.offset;
      if (this.entries[index]?.onlyGroup !== undefined) this.targeted--;
      this.entries[index] = undefined;
    }
    this.start = upTo;
    const dead = this.start - this.offset;
    if (dead === this.entries.length) {
      this.entries = [];
      this.offset = this.start;
    } else if (dead > 1024 && dead * 2 > this.entries.length) {
      this.entries = this.entries.slice(dead);
      this.offset = this.start;
    }
    return dropped;
  }

  /** Entries in [from, next) meant for a group other than `group`. */
  foreignFrom(from: number, group: string): number {
    if (this.targeted === 0) return 0;
    let count = 0;
    for (let s = Math.max(from, this.start); s < this.next; s++) {
      const only = this.entries[s - this.offset]?.onlyGroup;
      if (only !== undefined && only !== group) count++;
    }
    return count;
  }
}
