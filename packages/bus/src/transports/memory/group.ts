import type { BusClock } from '../../clock.js';
import { MAX_TIMER_MS } from '../../clock.js';
import type { TransportMessage } from '../../transport.js';
import type { MemoryConsumer, MemoryDelivery } from './consumer.js';
import type { AttemptError, MemoryDeadLetterStore } from './dead-letters.js';
import type { Topic } from './topic.js';
import { describeError } from '../shared/errors.js';

const IDLE = 0;
const IN_FLIGHT = 1;
const DELAYED = 2;

/**
 * A group's state in one partition. Only the message at `cursor` is ever out (one in flight
 * per partition and group is what keeps per-key order), so its attempt count and errors live
 * here rather than per message.
 */
export interface GroupPartition {
  readonly index: number;
  /** Sequence number of the next message this group settles in the partition. */
  cursor: number;
  state: typeof IDLE | typeof IN_FLIGHT | typeof DELAYED;
  /** Deliveries of the message at `cursor` so far. */
  attempt: number;
  errors: AttemptError[] | undefined;
  delivery: MemoryDelivery | undefined;
  /** The backoff timer of a DELAYED partition. */
  timer: unknown;
  /** In the ready ring already. */
  queued: boolean;
}

/** What a group needs from its transport. */
export interface GroupContext {
  readonly clock: BusClock;
  readonly deadLetters: MemoryDeadLetterStore;
}


/**
 * A consumer group of a topic: a cursor per partition, shared by its competing consumers,
 * and a ring of partitions ready to hand out. Every settle path (ack, nack, dead letter,
 * visibility timeout, release by a stopping consumer) goes through here, only while the
 * delivery is still the partition's current one, so a stale token can never settle a newer
 * delivery of the same message.
 */
export class Group {
  readonly parts: GroupPartition[];
  readonly consumers: MemoryConsumer[] = [];
  /** Partitions that may have a message to hand out; each at most once (see `queued`). */
  private readonly ring: Int32Array;
  private ringHead = 0;
  private ringCount = 0;
  private nextConsumer = 0;
  private dispatching = false;

  constructor(
    readonly name: string,
    readonly topic: Topic,
    private readonly ctx: GroupContext,
    startFrom: 'earliest' | 'latest',
  ) {
    this.parts = topic.logs.map((log, index) => ({
      index,
      cursor: startFrom === 'latest' ? log.next : log.start,
      state: IDLE,
      attempt: 0,
      errors: undefined,
      delivery: undefined,
      timer: undefined,
      queued: false,
    }));
    this.ring = new Int32Array(topic.logs.length);
    for (let p = 0; p < this.parts.length; p++) this.offer(p);
  }

  /** Marks partition `p` as maybe having work; cheap enough to call per published message. */
  offer(p: number): void {
    const part = this.parts[p] as GroupPartition;
    if (part.queued || part.state !== IDLE) return;
    part.queued = true;
    this.ring[(this.ringHead + this.ringCount++) % this.ring.length] = p;
  }

  /** Hands ready partitions' head messages to consumers with room, round robin. */
  dispatch(): void {
    // A handler may settle synchronously and land back here; the outer loop picks that up.
    if (this.dispatching) return;
    this.dispatching = true;
    try {
      while (this.ringCount > 0) {
        const consumer = this.pickConsumer();
        if (consumer === undefined) return;
        const p = this.ring[this.ringHead] as number;
        this.ringHead = (this.ringHead + 1) % this.ring.length;
        this.ringCount--;
        const part = this.parts[p] as GroupPartition;
        part.queued = false;
        if (part.state !== IDLE) continue;
        const entry = this.topic.headOf(this, part);
        if (entry === undefined) continue;
        part.state = IN_FLIGHT;
        part.attempt++;
        consumer.deliver(part, entry.message);
      }
    } finally {
      this.dispatching = false;
    }
  }

  private pickConsumer(): MemoryConsumer | undefined {
    const consumers = this.consumers;
    const n = consumers.length;
    for (let i = 0; i < n; i++) {
      const at = (this.nextConsumer + i) % n;
      const consumer = consumers[at] as MemoryConsumer;
      if (consumer.hasRoom()) {
        this.nextConsumer = (at + 1) % n;
        return consumer;
      }
    }
    return undefined;
  }

  addConsumer(consumer: MemoryConsumer): void {
    this.consumers.push(consumer);
    this.dispatch();
  }

  removeConsumer(consumer: MemoryConsumer): void {
    const at = this.consumers.indexOf(consumer);
    if (at >= 0) this.consumers.splice(at, 1);
    this.nextConsumer = 0;
    this.dispatch();
  }

  ack(delivery: MemoryDelivery): void {
    this.close(delivery);
    this.advance(delivery.part);
  }

  /** A failed attempt: back after the backoff, or to the dead letters after the last one. */
  fail(delivery: MemoryDelivery, error: unknown, delayMs: number | undefined): void {
    const part = delivery.part;
    this.record(part, describeError(error));
    this.close(delivery);
    const { redelivery } = delivery.consumer.spec;
    if (part.attempt >= redelivery.maxAttempts) return this.bury(part, delivery.message);
    this.later(part, delayMs ?? redelivery.backoffMs(part.attempt));
  }

  deadLetter(delivery: MemoryDelivery, reason: string): void {
    this.record(delivery.part, reason);
    this.close(delivery);
    this.bury(delivery.part, delivery.message);
  }

  /** The holder did not settle in time: presumed dead, the message is up for grabs now. */
  expire(delivery: MemoryDelivery): void {
    const timeout = delivery.consumer.spec.visibilityTimeoutMs;
    this.record(delivery.part, `visibility timeout of ${timeout} ms passed`);
    this.close(delivery);
    delivery.abort(new DOMException(`visibility timeout of ${timeout} ms passed`, 'TimeoutError'));
    if (delivery.part.attempt >= delivery.consumer.spec.redelivery.maxAttempts) return this.bury(delivery.part, delivery.message);
    this.later(delivery.part, 0);
  }

  /**
   * A stopping consumer gives a delivery back unsettled. The attempt is not counted: the
   * message never had a fair try, and a rolling restart must not use up its attempts.
   */
  release(delivery: MemoryDelivery): void {
    this.close(delivery);
    delivery.abort(new DOMException('consumer stopped', 'AbortError'));
    delivery.part.attempt--;
    this.later(delivery.part, 0);
  }

  /** Stops backoff timers (the transport is closing). */
  clearTimers(): void {
    for (const part of this.parts) {
      if (part.timer !== undefined) this.ctx.clock.clearTimeout(part.timer);
      part.timer = undefined;
    }
  }

  get inFlight(): number {
    let n = 0;
    for (const part of this.parts) if (part.state === IN_FLIGHT) n++;
    return n;
  }

  private close(delivery: MemoryDelivery): void {
    delivery.open = false;
    delivery.part.delivery = undefined;
    delivery.consumer.held--;
  }

  private record(part: GroupPartition, error: string): void {
    (part.errors ??= []).push({ at: new Date(this.ctx.clock.now()).toISOString(), attempt: part.attempt, error });
  }

  private bury(part: GroupPartition, message: TransportMessage): void {
    this.ctx.deadLetters.add({
      topic: this.topic.settings.name,
      group: this.name,
      message,
      attempts: part.attempt,
      errors: part.errors ?? [],
      deadAt: new Date(this.ctx.clock.now()).toISOString(),
    });
    this.advance(part);
  }

  /** The partition's head is settled for this group: on to the next message. */
  private advance(part: GroupPartition): void {
    part.cursor++;
    part.attempt = 0;
    part.errors = undefined;
    part.state = IDLE;
    this.topic.retain(part.index);
    this.offer(part.index);
    this.dispatch();
  }

  /** Makes the head available again after `delayMs`; it keeps its partition meanwhile (order). */
  private later(part: GroupPartition, delayMs: number): void {
    if (!(delayMs > 0)) {
      part.state = IDLE;
      this.offer(part.index);
      this.dispatch();
      return;
    }
    part.state = DELAYED;
    part.timer = this.ctx.clock.setTimeout(() => {
      part.timer = undefined;
      part.state = IDLE;
      this.offer(part.index);
      this.dispatch();
    }, Math.min(delayMs, MAX_TIMER_MS));
  }
}
