import type { BusClock } from '../../clock.js';
import { MAX_TIMER_MS } from '../../clock.js';
import type { Consumer, Delivery, DeliveryHandler, SubscriptionSpec, TransportMessage } from '../../transport.js';
import type { Group, GroupPartition } from './group.js';
import { IdleWait } from '../shared/idle.js';

const DONE: Promise<void> = Promise.resolve();

/**
 * One delivery, and the token that settles it: `open` is true only while it is the
 * partition's current delivery, so a late ack after a visibility timeout does nothing.
 * Its AbortController is made only if someone reads `signal`, which most handlers never do.
 * `ack`, `nack` and `deadLetter` are methods: call them on the delivery.
 */
export class MemoryDelivery implements Delivery {
  open = true;
  private controller: AbortController | undefined;
  private abortReason: unknown;
  private aborted = false;

  constructor(
    readonly consumer: MemoryConsumer,
    readonly part: GroupPartition,
    readonly message: TransportMessage,
    readonly attempt: number,
    readonly deadline: number,
  ) {}

  get topic(): string {
    return this.consumer.spec.topic;
  }
  get group(): string {
    return this.consumer.spec.group;
  }
  get partition(): number {
    return this.part.index;
  }

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.abortReason);
    }
    return this.controller.signal;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.abortReason = reason;
    this.controller?.abort(reason);
  }

  ack(): Promise<void> {
    if (this.open) this.consumer.group.ack(this);
    return DONE;
  }

  nack(error: unknown, options?: { delayMs?: number }): Promise<void> {
    if (this.open) this.consumer.group.fail(this, error, options?.delayMs);
    return DONE;
  }

  deadLetter(reason: string): Promise<void> {
    if (this.open) this.consumer.group.deadLetter(this, reason);
    return DONE;
  }
}

/**
 * A consumer of a group. Its room is counted in running handlers, not unsettled deliveries:
 * a handler still running after its delivery expired keeps its slot, so `maxInFlight` bounds
 * concurrent handler calls whatever happens. One timer per consumer watches visibility
 * deadlines; since every delivery gets the same timeout, the earliest deadline is the oldest
 * delivery's, and the timer fires about once per timeout, not once per message.
 */
export class MemoryConsumer implements Consumer {
  /** Deliveries out and not settled: the contract's `inFlight`. */
  held = 0;
  private readonly running = new Set<MemoryDelivery>();
  private stopping: Promise<void> | undefined;
  private timer: unknown;
  private readonly idle = new IdleWait();

  constructor(
    readonly spec: SubscriptionSpec,
    readonly group: Group,
    private readonly handler: DeliveryHandler,
    private readonly clock: BusClock,
    private readonly onStopped: (consumer: MemoryConsumer) => void,
  ) {}

  get inFlight(): number {
    return this.held;
  }

  hasRoom(): boolean {
    return this.stopping === undefined && this.running.size < this.spec.maxInFlight;
  }

  deliver(part: GroupPartition, message: TransportMessage): void {
    const delivery = new MemoryDelivery(this, part, message, part.attempt, this.clock.now() + this.spec.visibilityTimeoutMs);
    part.delivery = delivery;
    this.held++;
    this.running.add(delivery);
    if (this.timer === undefined && Number.isFinite(delivery.deadline)) this.arm(delivery.deadline);
    void this.run(delivery);
  }

  private async run(delivery: MemoryDelivery): Promise<void> {
    let failed = false;
    let error: unknown;
    try {
      await this.handler(delivery);
    } catch (err) {
      failed = true;
      error = err;
    }
    // Free the slot first, so settling can hand this consumer the partition's next message.
    this.running.delete(delivery);
    if (delivery.open) {
      if (failed) this.group.fail(delivery, error, undefined);
      else this.group.ack(delivery);
    } else {
      this.group.dispatch();
    }
    if (this.running.size === 0) this.idle.notify();
  }

  private arm(at: number): void {
    this.timer = this.clock.setTimeout(() => this.sweep(), Math.min(Math.max(0, at - this.clock.now()), MAX_TIMER_MS));
  }

  private sweep(): void {
    this.timer = undefined;
    const now = this.clock.now();
    const expired: MemoryDelivery[] = [];
    let next = Number.POSITIVE_INFINITY;
    for (const delivery of this.running) {
      if (!delivery.open) continue;
      if (delivery.deadline <= now) expired.push(delivery);
      else if (delivery.deadline < next) next = delivery.deadline;
    }
    if (next < Number.POSITIVE_INFINITY) this.arm(next);
    for (const delivery of expired) if (delivery.open) this.group.expire(delivery);
  }

  stop(options: { graceMs?: number } = {}): Promise<void> {
    this.stopping ??= this.shutdown(options.graceMs ?? 30_000);
    return this.stopping;
  }

  private async shutdown(graceMs: number): Promise<void> {
    if (this.running.size > 0 && graceMs > 0) await this.idle.wait(this.clock, graceMs);
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    // Handlers still running past the grace are told to give up; their messages go to others now.
    for (const delivery of [...this.running]) {
      if (delivery.open) this.group.release(delivery);
      else delivery.abort(new DOMException('consumer stopped', 'AbortError'));
    }
    this.group.removeConsumer(this);
    this.onStopped(this);
  }
}
