import type { DbLogger } from '@agora/db';
import type { BusClock } from '../../clock.js';
import type { Delivery, DeliveryHandler } from '../../transport.js';

/** A delivery a consumer holds: settled at most once, its handler told through `controller`. */
export interface Held {
  settled: boolean;
  readonly controller: AbortController;
}

/**
 * Runs `action` unless `held` was settled already: the first settlement wins (a handler's own
 * ack, its return, its visibility timeout, a stop); later calls resolve without effect.
 * `after` runs whether the action worked or not (forget the delivery, claim again).
 *
 * @example
 * ack: () => settleOnce(held, () => this.ack(held), () => this.done(held)),
 */
export async function settleOnce(held: Held, action: () => Promise<void>, after: () => void): Promise<void> {
  if (held.settled) return;
  held.settled = true;
  try {
    await action();
  } finally {
    after();
  }
}

/**
 * Calls the handler, then settles the delivery by how it ended (returned: ack; threw: nack
 * with the error) unless the handler settled it itself, which wins.
 *
 * @example
 * this.work.track(handleDelivery(this.handler, delivery, held));
 */
export async function handleDelivery(handler: DeliveryHandler, delivery: Delivery, held: Held): Promise<void> {
  let failed = false;
  let failure: unknown;
  try {
    await handler(delivery);
  } catch (err) {
    failed = true;
    failure = err;
  }
  if (!held.settled) await (failed ? delivery.nack(failure) : delivery.ack());
}

/**
 * Marks every unsettled delivery settled and aborts its handler (`AbortError`, 'consumer
 * stopped'), for a consumer stopping past its grace. Returns them, for the engine to release.
 *
 * @example
 * const left = abandon(this.held.values(), (held) => this.forget(held));
 */
export function abandon<H extends Held>(held: Iterable<H>, forget: (held: H) => void): H[] {
  const left = [...held].filter((entry) => !entry.settled);
  for (const entry of left) {
    entry.settled = true;
    forget(entry);
    entry.controller.abort(new DOMException('consumer stopped', 'AbortError'));
  }
  return left;
}

/**
 * The handler runs and settlements of one consumer, so that stopping can wait for them. A
 * settlement that fails (the engine is away) is logged here; the lease then runs out and the
 * message is redelivered.
 *
 * @example
 * const work = new Work(logger, { topic, group });
 * work.track(run);
 * await work.settledWithin(clock, graceMs);
 */
export class Work {
  private readonly running = new Set<Promise<void>>();

  constructor(
    private readonly logger: DbLogger,
    private readonly where: { readonly topic: string; readonly group: string },
  ) {}

  get size(): number {
    return this.running.size;
  }

  track(work: Promise<void>): void {
    const tracked = work.catch((err: unknown) => {
      this.logger.error({ err, topic: this.where.topic, group: this.where.group }, 'settling a delivery failed; it is redelivered after its visibility timeout');
    });
    this.running.add(tracked);
    void tracked.finally(() => this.running.delete(tracked));
  }

  /** Resolves when everything tracked now has ended, or after `ms`, whichever comes first. */
  async settledWithin(clock: BusClock, ms: number): Promise<void> {
    let graceTimer: unknown;
    const grace = new Promise<void>((resolve) => {
      graceTimer = clock.setTimeout(resolve, ms);
    });
    await Promise.race([Promise.allSettled([...this.running]), grace]);
    if (graceTimer !== undefined) clock.clearTimeout(graceTimer);
  }
}

/**
 * The deliveries a claiming consumer (postgres, redis-streams) holds, each with the timer of
 * its visibility timeout. Settling goes through {@link HeldSet.settle}: once, then the delivery
 * is forgotten and the consumer woken to claim into the freed slot.
 *
 * @example
 * const held = new HeldSet<MyHeld>(clock, () => loop.wake());
 * ack: () => held.settle(entry, () => ackOnServer(entry)),
 */
export class HeldSet<H extends Held & { timer: unknown }> implements Iterable<H> {
  private readonly entries = new Set<H>();

  constructor(
    private readonly clock: BusClock,
    private readonly wake: () => void,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  add(held: H): void {
    this.entries.add(held);
  }

  [Symbol.iterator](): Iterator<H> {
    return this.entries[Symbol.iterator]();
  }

  /** Drops `held` and its visibility timer, settled or not. */
  forget(held: H): void {
    if (held.timer !== undefined) this.clock.clearTimeout(held.timer);
    held.timer = undefined;
    this.entries.delete(held);
  }

  /** The first settlement wins; later calls resolve without effect. */
  settle(held: H, action: () => Promise<void>): Promise<void> {
    return settleOnce(held, action, () => {
      this.forget(held);
      this.wake();
    });
  }
}
