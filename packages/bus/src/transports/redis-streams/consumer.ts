import { randomUUID } from 'node:crypto';
import type { DbLogger } from '@agora/db';
import { MAX_TIMER_MS, type BusClock } from '../../clock.js';
import type { Consumer, Delivery, DeliveryHandler, SubscriptionSpec, TransportMessage } from '../../transport.js';
import type { ScriptRunner } from './commands.js';
import type { TopicEvent } from './notifier.js';
import { DEFAULT_GRACE_MS, describeError, type TopicKeys } from './options.js';
import { ClaimLoop } from '../shared/claim-loop.js';
import { abandon, handleDelivery, HeldSet, Work, type Held as SettleOnce } from '../shared/settle.js';

/** A delivery this consumer holds: its lease and the handler's life. */
interface Held extends SettleOnce {
  readonly partition: number;
  readonly token: string;
  readonly attempt: number;
  readonly message: TransportMessage;
  timer: unknown;
}

export interface ConsumerContext {
  readonly run: ScriptRunner;
  readonly keys: TopicKeys;
  readonly channel: string;
  readonly partitions: number;
  readonly clock: BusClock;
  readonly logger: DbLogger;
  readonly pollIntervalMs: number;
  /** Subscribes to the topic's notifications; resolves to the unsubscribe function. */
  readonly listen: (listener: (event: TopicEvent) => void) => Promise<() => void>;
  readonly onStopped: (consumer: RedisStreamsConsumer) => void;
}

type ClaimRow = [partition: number, attempts: number, token: string, fields: string[]];

function toMessage(fields: readonly string[]): TransportMessage {
  const map = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) map.set(fields[i] as string, fields[i + 1] as string);
  const key = map.get('k');
  const headers = JSON.parse(map.get('h') ?? '{}') as Record<string, string>;
  const base = { id: map.get('id') ?? '', headers, body: map.get('b') ?? '' };
  return key === undefined ? base : { ...base, key };
}

/**
 * A running consumer of one group. Claims with one script (see `CLAIM_LUA`): per partition the
 * group's head if claimable, else the partition's next entry, up to the free slots, so a
 * (group, partition) has at most one delivery out and competing consumers (here or in other
 * processes) take different partitions. Slots count running handlers, as in the memory
 * transport: a handler still running after its lease expired keeps its slot, so `maxInFlight`
 * bounds concurrent handler calls whatever happens. Claims run on a notification of the
 * topic, after every settlement, when a blocked head becomes claimable (the script says when),
 * and every `pollIntervalMs`.
 */
export class RedisStreamsConsumer implements Consumer {
  private readonly held: HeldSet<Held>;
  private readonly work: Work;
  private readonly loop: ClaimLoop;
  private busy = 0;
  private wakeTimer: { handle: unknown; at: number } | undefined;
  private unlisten: (() => void) | undefined;
  private stopping: Promise<void> | undefined;
  private nextPartition = 0;
  private readonly tokenBase = randomUUID();
  private claims = 0;

  constructor(
    private readonly spec: SubscriptionSpec,
    private readonly handler: DeliveryHandler,
    private readonly ctx: ConsumerContext,
  ) {
    this.nextPartition = Math.floor(Math.random() * ctx.partitions);
    this.work = new Work(ctx.logger, spec);
    this.held = new HeldSet(ctx.clock, () => this.wake());
    this.loop = new ClaimLoop(spec, ctx, {
      // Slots count running handlers, not held leases (see the class comment).
      free: () => this.spec.maxInFlight - this.busy,
      claim: (free) => this.claimOnce(free),
    });
  }

  get inFlight(): number {
    return this.held.size;
  }

  async start(): Promise<void> {
    this.unlisten = await this.ctx.listen(() => this.wake());
    this.loop.start();
  }

  stop(options: { graceMs?: number } = {}): Promise<void> {
    this.stopping ??= this.shutdown(options.graceMs ?? DEFAULT_GRACE_MS);
    return this.stopping;
  }

  private async shutdown(graceMs: number): Promise<void> {
    const claimed = this.loop.stop();
    this.unlisten?.();
    if (this.wakeTimer !== undefined) this.ctx.clock.clearTimeout(this.wakeTimer.handle);
    this.wakeTimer = undefined;
    // A claim in progress hands what it got straight back (see claimOnce).
    await claimed;

    if (this.work.size > 0 && graceMs > 0) await this.work.settledWithin(this.ctx.clock, Math.min(graceMs, MAX_TIMER_MS));

    const left = abandon(this.held, (held) => this.forget(held));
    // Give the leases back now rather than at their timeout, so another consumer takes them at once.
    if (left.length > 0) await this.release(left.map((held) => [held.partition, held.token] as const));
    this.ctx.onStopped(this);
  }

  private async release(leases: readonly (readonly [number, string])[]): Promise<void> {
    try {
      await this.ctx.run('agoraBusRelease', [this.ctx.keys.heads(this.spec.group)], [this.spec.topic, this.ctx.channel, ...leases.flat()]);
    } catch (err) {
      this.ctx.logger.warn({ err, topic: this.spec.topic, group: this.spec.group }, 'releasing leases failed; they expire at their visibility timeout');
    }
  }

  /** Wakes up after `ms`, keeping one timer: the earliest asked for. */
  private wakeAfter(ms: number): void {
    if (!this.loop.active) return;
    const delay = Math.min(Math.max(0, ms), MAX_TIMER_MS);
    const at = this.ctx.clock.now() + delay;
    if (this.wakeTimer !== undefined) {
      if (this.wakeTimer.at <= at) return;
      this.ctx.clock.clearTimeout(this.wakeTimer.handle);
    }
    const handle = this.ctx.clock.setTimeout(() => {
      this.wakeTimer = undefined;
      this.wake();
    }, delay);
    this.wakeTimer = { handle, at };
  }

  private wake(): void {
    this.loop.wake();
  }

  /** Resolves true when every free slot was filled (there may be more to take). */
  private async claimOnce(free: number): Promise<boolean> {
    const { keys, partitions } = this.ctx;
    const streams = Array.from({ length: partitions }, (_, p) => keys.stream(p));
    const start = this.nextPartition;
    this.nextPartition = (this.nextPartition + 1) % partitions;
    // Leases run from the server's TIME during the claim; timing them from before the call
    // makes this process give up (abort, settle as timed out) no later than the server does.
    const sentAt = this.ctx.clock.now();
    const reply = (await this.ctx.run('agoraBusClaim', [keys.meta, keys.heads(this.spec.group), keys.dlq, ...streams], [
      this.spec.group,
      this.spec.topic,
      this.ctx.channel,
      free,
      Math.min(this.spec.visibilityTimeoutMs, MAX_TIMER_MS),
      this.spec.redelivery.maxAttempts,
      `${this.tokenBase}:${++this.claims}`,
      start,
    ])) as [number, number, ClaimRow[]];
    const [now, nextAt, rows] = reply;
    if (nextAt >= 0) this.wakeAfter(nextAt - now);
    if (!this.loop.active) {
      // Stopped while claiming: hand the leases straight back.
      if (rows.length > 0) await this.release(rows.map(([partition, , token]) => [partition, token] as const));
      return false;
    }
    for (const row of rows) this.dispatch(row, sentAt);
    return rows.length === free;
  }

  private dispatch([partition, attempt, token, fields]: ClaimRow, sentAt: number): void {
    const held: Held = { partition, token, attempt, message: toMessage(fields), controller: new AbortController(), settled: false, timer: undefined };
    this.held.add(held);
    this.busy++;
    const timeoutMs = Math.min(this.spec.visibilityTimeoutMs, MAX_TIMER_MS);
    held.timer = this.ctx.clock.setTimeout(() => {
      held.timer = undefined;
      const text = `visibility timeout of ${timeoutMs} ms passed`;
      held.controller.abort(new DOMException(text, 'TimeoutError'));
      // The holder is alive but late: settle the lease as a failed attempt now instead of
      // waiting for another claim to notice it (which is what happens when the holder died).
      this.work.track(this.settle(held, () => this.fail(held, text, 'retry', 0)));
    }, Math.max(0, timeoutMs - (this.ctx.clock.now() - sentAt)));

    const run = (async () => {
      try {
        await handleDelivery(this.handler, this.delivery(held), held);
      } finally {
        // The slot is the handler's until it has returned and its delivery is settled.
        this.busy--;
        this.wake();
      }
    })();
    this.work.track(run);
  }

  private delivery(held: Held): Delivery {
    return {
      message: held.message,
      topic: this.spec.topic,
      group: this.spec.group,
      partition: held.partition,
      attempt: held.attempt,
      signal: held.controller.signal,
      ack: () => this.settle(held, () => this.ack(held)),
      nack: (error, options) => this.settle(held, () => this.fail(held, describeError(error), 'retry', options?.delayMs)),
      deadLetter: (reason) => this.settle(held, () => this.fail(held, reason, 'dead', 0)),
    };
  }

  private settle(held: Held, action: () => Promise<void>): Promise<void> {
    return this.held.settle(held, action);
  }

  private forget(held: Held): void {
    this.held.forget(held);
  }

  private async ack(held: Held): Promise<void> {
    const { keys } = this.ctx;
    await this.ctx.run('agoraBusAck', [keys.meta, keys.heads(this.spec.group), keys.stream(held.partition)], [
      this.spec.group,
      this.spec.topic,
      this.ctx.channel,
      held.partition,
      held.token,
    ]);
  }

  /** A failed attempt: retried after `delayMs` (default: the policy's backoff), or dead-lettered. */
  private async fail(held: Held, error: string, mode: 'retry' | 'dead', delayMs: number | undefined): Promise<void> {
    const { keys } = this.ctx;
    const delay = Math.min(Math.max(0, delayMs ?? this.spec.redelivery.backoffMs(held.attempt)), MAX_TIMER_MS);
    const reply = (await this.ctx.run('agoraBusFail', [keys.meta, keys.heads(this.spec.group), keys.dlq, keys.stream(held.partition)], [
      this.spec.group,
      this.spec.topic,
      this.ctx.channel,
      held.partition,
      held.token,
      error,
      mode,
      Number.isFinite(delay) ? Math.ceil(delay) : 0,
      this.spec.redelivery.maxAttempts,
    ])) as [string, unknown?];
    // Other processes see it when notified or at their poll; this one comes back for it on time.
    if (reply[0] === 'retry' && delay > 0) this.wakeAfter(delay);
  }
}
