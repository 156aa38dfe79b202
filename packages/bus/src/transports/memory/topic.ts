import { BusError } from '../../errors.js';
import { partitionOf } from '../../partition.js';
import type { TransportMessage } from '../../transport.js';
import type { Group, GroupPartition } from './group.js';
import { PartitionLog, type LogEntry } from './log.js';
import { checkMessageSizes } from '../shared/message-size.js';

/** A topic's settings with the defaults filled in. */
export interface TopicSettings {
  readonly name: string;
  readonly partitions: number;
  readonly maxMessageBytes: number;
  readonly maxUnacked: number;
  readonly onFull: 'wait' | 'reject';
}

/** A publish parked by `onFull: 'wait'`, appending what fits as room appears. */
interface Waiter {
  readonly messages: readonly TransportMessage[];
  next: number;
  readonly resolve: () => void;
  readonly reject: (reason: unknown) => void;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
}

/**
 * One topic: a log per partition, its groups, and interest retention. An entry is dropped as
 * soon as every declared group's cursor has passed it; with no group declared everything is
 * kept, so a publisher may start before its consumers (as the contract says).
 */
export class Topic {
  readonly logs: PartitionLog[];
  readonly groups = new Map<string, Group>();
  /** The same groups, as an array: iterated per published message. */
  readonly groupList: Group[] = [];
  /** Entries held across partitions: what `maxUnacked` bounds. */
  retained = 0;
  private readonly waiters: Waiter[] = [];
  private pumpScheduled = false;

  constructor(readonly settings: TopicSettings) {
    this.logs = Array.from({ length: settings.partitions }, () => new PartitionLog());
  }

  /** @throws BusError `message_too_large` (the whole batch is refused). */
  checkSizes(messages: readonly TransportMessage[]): void {
    const max = this.settings.maxMessageBytes;
    for (const message of messages) {
      // A UTF-16 unit is at most 3 UTF-8 bytes: most messages are proven small without encoding.
      let units = message.body.length;
      for (const name in message.headers) units += name.length + (message.headers[name]?.length ?? 0);
      if (units * 3 <= max) continue;
      checkMessageSizes(this.settings.name, [message], max);
    }
  }

  /** Appends, honouring `maxUnacked`/`onFull`. */
  publish(messages: readonly TransportMessage[], signal: AbortSignal | undefined): Promise<void> | undefined {
    const room = this.room();
    if (room >= messages.length && this.waiters.length === 0) {
      this.append(messages, 0, messages.length);
      return undefined;
    }
    if (this.settings.onFull === 'reject') {
      throw new BusError('queue_full', `topic ${this.settings.name} holds ${this.retained} unacknowledged messages (max ${this.settings.maxUnacked})`, {
        topic: this.settings.name,
        maxUnacked: this.settings.maxUnacked,
      });
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        messages,
        next: 0,
        resolve,
        reject,
        signal,
        onAbort: () => {
          // What was appended before the abort stays: it is in the log, in order.
          const index = this.waiters.indexOf(waiter);
          if (index >= 0) this.waiters.splice(index, 1);
          reject(signal?.reason);
        },
      };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      this.waiters.push(waiter);
      this.pump();
    });
  }

  /** Fails every parked publish (the transport is closing). */
  rejectWaiters(reason: unknown): void {
    for (const waiter of this.waiters.splice(0)) {
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      waiter.reject(reason);
    }
  }

  private room(): number {
    return this.groupList.length === 0 ? Number.POSITIVE_INFINITY : this.settings.maxUnacked - this.retained;
  }

  /** Lets parked publishes append as far as room allows, oldest first. */
  private pump(): void {
    this.pumpScheduled = false;
    while (this.waiters.length > 0) {
      const room = this.room();
      if (room <= 0) return;
      const waiter = this.waiters[0] as Waiter;
      const to = Math.min(waiter.messages.length, waiter.next + room);
      this.append(waiter.messages, waiter.next, to);
      waiter.next = to;
      if (to < waiter.messages.length) continue;
      this.waiters.shift();
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      waiter.resolve();
    }
  }

  private append(messages: readonly TransportMessage[], from: number, to: number): void {
    const { partitions } = this.settings;
    const groups = this.groupList;
    for (let i = from; i < to; i++) {
      const message = messages[i] as TransportMessage;
      const p = partitions === 1 ? 0 : partitionOf(message.key, partitions, message.id);
      (this.logs[p] as PartitionLog).append(message);
      for (let g = 0; g < groups.length; g++) (groups[g] as Group).offer(p);
    }
    this.retained += to - from;
    for (const group of groups) group.dispatch();
  }

  /** Appends a replayed message that only `group` will see, behind what already waits. */
  appendFor(group: Group, message: TransportMessage): void {
    const p = partitionOf(message.key, this.settings.partitions, message.id);
    const log = this.logs[p] as PartitionLog;
    const entry = log.append(message, group.name);
    this.retained++;
    // Groups already caught up step over it now, so it never holds back retention.
    for (const other of this.groupList) {
      const part = other.parts[p] as GroupPartition;
      if (other !== group && part.cursor === entry.seq) part.cursor++;
    }
    group.offer(p);
    group.dispatch();
  }

  /** The next entry `group` should handle in `part`, stepping over other groups' replays. */
  headOf(group: Group, part: GroupPartition): LogEntry | undefined {
    const log = this.logs[part.index] as PartitionLog;
    const first = part.cursor;
    while (part.cursor < log.next) {
      const entry = log.at(part.cursor) as LogEntry;
      if (entry.onlyGroup === undefined || entry.onlyGroup === group.name) break;
      part.cursor++;
    }
    if (part.cursor !== first) this.retain(part.index);
    return part.cursor < log.next ? log.at(part.cursor) : undefined;
  }

  /**
   * Drops what every group has settled in partition `p`; wakes parked publishers on room. A
   * topic with no group keeps everything (bounded by `maxUnacked`), for a group to come.
   */
  retain(p: number): void {
    if (this.groupList.length === 0) return;
    const log = this.logs[p] as PartitionLog;
    let low = log.next;
    for (const group of this.groupList) {
      const cursor = (group.parts[p] as GroupPartition).cursor;
      if (cursor < low) low = cursor;
    }
    const dropped = log.dropBelow(low);
    if (dropped === 0) return;
    this.retained -= dropped;
    if (this.waiters.length > 0 && !this.pumpScheduled) {
      // Appending dispatches, and dispatch may settle synchronously: pump outside this stack.
      this.pumpScheduled = true;
      queueMicrotask(() => this.pump());
    }
  }

  /** Messages `group` has not settled yet. */
  pending(group: Group): number {
    let total = 0;
    for (const part of group.parts) {
      const log = this.logs[part.index] as PartitionLog;
      total += log.next - part.cursor - log.foreignFrom(part.cursor, group.name);
    }
    return total;
  }
}
