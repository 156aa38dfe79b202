import type pg from 'pg';
import type { DbLogger } from '@agora/db';
import type { Consumer, Delivery, DeliveryHandler, SubscriptionSpec, TransportMessage } from '../../transport.js';
import type { TopicEvent } from './notifier.js';
import { channelOf, DEFAULT_GRACE_MS, describeError, errorEntrySql } from './options.js';
import type { BusClock } from '../../clock.js';
import { ClaimLoop } from '../shared/claim-loop.js';
import { abandon, handleDelivery, HeldSet, Work, type Held as SettleOnce } from '../shared/settle.js';

interface ClaimRow {
  partition: number;
  seq: string;
  attempts: number;
  token: string;
  id: string;
  key: string | null;
  headers: Record<string, string>;
  body: string;
}


/** See `wakeAfter`. */
const WAKE_MARGIN_MS = 15;

/** Most acks sent in one `ack_deliveries` call. */
const MAX_ACK_BATCH = 500;

/** An ack waiting for the next `ack_deliveries` call. */
interface PendingAck {
  readonly row: ClaimRow;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

/** A delivery this consumer holds: its lease token and the handler's life. */
interface Held extends SettleOnce {
  readonly row: ClaimRow;
  timer: unknown;
}

export interface ConsumerContext {
  readonly pool: pg.Pool;
  readonly schema: string;
  readonly partitions: number;
  readonly clock: BusClock;
  readonly logger: DbLogger;
  readonly pollIntervalMs: number;
  /** The topic is bounded with onFull 'wait': settlements NOTIFY publishers waiting for room. */
  readonly notifySettled: boolean;
  /** Subscribes to the topic's NOTIFYs; resolves to the unsubscribe function. */
  readonly listen: (listener: (event: TopicEvent) => void) => Promise<() => void>;
  readonly onStopped: (consumer: PostgresConsumer) => void;
}

/** Builds the claim statement of a schema (see the class comment). */
function claimSql(schema: string): string {
  // Every step is an index lookup whatever the planner thinks of the table (a queue's
  // statistics are rarely right): heads by the primary key, one per partition; live leases by
  // deliveries_inflight; the rows to lock and update by = any() of the heads' keys, not a join
  // the planner might turn into a walk over the group's whole backlog.
  return `
with heads as (
  select h.partition, h.seq
    from generate_series(0, $3::int - 1) as p(partition)
    cross join lateral (
      select d.partition, d.seq, d.visible_at from ${schema}.deliveries d
       where d.topic = $1 and d.grp = $2 and d.partition = p.partition
       order by d.seq
       limit 1
    ) h
   where h.visible_at <= now()
     and not exists (
       select 1 from ${schema}.deliveries x
        where x.topic = $1 and x.grp = $2 and x.partition = h.partition and x.seq > h.seq
          and x.state = 'inflight' and x.visible_at > now())
), picked as (
  select d.partition, d.seq
    from ${schema}.deliveries d
   where d.topic = $1 and d.grp = $2
     and d.partition = any (array(select partition from heads))
     and d.seq = any (array(select seq from heads))
     and d.visible_at <= now()
   order by d.seq
   limit $4
   for update of d skip locked
)
update ${schema}.deliveries d
   set state = 'inflight',
       attempts = d.attempts + 1,
       visible_at = now() + make_interval(secs => $5::float8 / 1000),
       token = gen_random_uuid(),
       errors = case when d.state = 'inflight'
                     then d.errors || jsonb_build_array(${errorEntrySql('d.attempts', "'visibility timeout of ' || $5 || ' ms passed'")})
                     else d.errors end
  from ${schema}.messages m
 where d.topic = $1 and d.grp = $2
   and d.partition = any (array(select partition from picked))
   and d.seq = any (array(select seq from picked))
   and m.topic = $1 and m.seq = d.seq
returning d.partition, d.seq, d.attempts, d.token, m.id, m.key, m.headers, m.body`;
}

/**
 * A running consumer of one group. Claims with one statement: for each partition of the topic
 * the group's oldest unsettled delivery (its head), if visible (`visible_at <= now()`: ready
 * and past its backoff, or in flight with an expired lease) and no later delivery of that
 * partition holds a live lease, locked `FOR UPDATE SKIP LOCKED`, up to the free slots. So a
 * (group, partition) has at most one delivery in flight, and competing consumers (in this or
 * other processes) take different partitions. Claims run on NOTIFY of the topic, after every
 * settlement, at the end of a nack's backoff, and every `pollIntervalMs`.
 */
export class PostgresConsumer implements Consumer {
  private readonly held: HeldSet<Held>;
  private readonly work: Work;
  private readonly loop: ClaimLoop;
  private readonly claim: string;
  private readonly channel: string;
  private readonly wakeTimers = new Set<unknown>();
  private pendingAcks: PendingAck[] = [];
  private ackFlushScheduled = false;
  private acking = false;
  private unlisten: (() => void) | undefined;
  private stopping: Promise<void> | undefined;

  constructor(
    private readonly spec: SubscriptionSpec,
    private readonly handler: DeliveryHandler,
    private readonly ctx: ConsumerContext,
  ) {
    this.claim = claimSql(ctx.schema);
    this.channel = channelOf(ctx.schema);
    this.work = new Work(ctx.logger, spec);
    this.held = new HeldSet(ctx.clock, () => this.wake());
    this.loop = new ClaimLoop(spec, ctx, {
      free: () => this.spec.maxInFlight - this.held.size,
      claim: (free) => this.claimOnce(free),
    });
  }

  get inFlight(): number {
    return this.held.size;
  }

  async start(): Promise<void> {
    this.unlisten = await this.ctx.listen((event) => {
      if (event === 'published') this.wake();
    });
    this.loop.start();
  }

  stop(options: { graceMs?: number } = {}): Promise<void> {
    this.stopping ??= this.shutdown(options.graceMs ?? DEFAULT_GRACE_MS);
    return this.stopping;
  }

  private async shutdown(graceMs: number): Promise<void> {
    // A claim in progress hands what it got straight back (see claimOnce); no need to wait for it.
    void this.loop.stop();
    this.unlisten?.();
    for (const timer of this.wakeTimers) this.ctx.clock.clearTimeout(timer);
    this.wakeTimers.clear();

    if (this.work.size > 0) await this.work.settledWithin(this.ctx.clock, graceMs);

    const left = abandon(this.held, (held) => this.forget(held));
    if (left.length > 0) {
      // Give the leases back now rather than at their timeout, so another consumer takes them at once.
      await this.ctx.pool
        .query(
          `with r as (
             update ${this.ctx.schema}.deliveries
                set state = 'ready', visible_at = now(), token = null, attempts = greatest(attempts - 1, 0)
              where topic = $1 and grp = $2 and token = any($3::uuid[])
             returning 1
           )
           select (select count(*) from r) as released, pg_notify($4, 'p:' || $1::text)`,
          [this.spec.topic, this.spec.group, left.map((held) => held.row.token), this.channel],
        )
        .catch((err: unknown) => {
          this.ctx.logger.warn({ err, topic: this.spec.topic, group: this.spec.group }, 'releasing leases failed; they expire at their visibility timeout');
        });
    }
    this.ctx.onStopped(this);
  }

  /**
   * Claims again after `ms`, plus a margin: the row becomes visible by the database's clock
   * (`visible_at <= now()`), and a JS timer may fire a millisecond early by it; a wake-up that
   * finds nothing would leave the message to the next poll.
   */
  private wakeAfter(ms: number): void {
    if (!this.loop.active) return;
    const timer = this.ctx.clock.setTimeout(() => {
      this.wakeTimers.delete(timer);
      this.wake();
    }, ms + WAKE_MARGIN_MS);
    this.wakeTimers.add(timer);
  }

  private wake(): void {
    this.loop.wake();
  }

  /** Resolves true when every free slot was filled (there may be more to take). */
  private async claimOnce(free: number): Promise<boolean> {
    // Leases run from the server's now() during the claim; timing them from before the query
    // was sent makes this process give up (abort, settle as timed out) no later than that.
    const sentAt = this.ctx.clock.now();
    const { rows } = await this.ctx.pool.query<ClaimRow>(this.claim, [
      this.spec.topic,
      this.spec.group,
      this.ctx.partitions,
      free,
      this.spec.visibilityTimeoutMs,
    ]);
    rows.sort((a, b) => compareSeq(a.seq, b.seq));
    for (const row of rows) {
      if (!this.loop.active) {
        // Stopped while claiming: hand the lease straight back, and the attempt the claim counted with it.
        void this.ctx.pool
          .query(`update ${this.ctx.schema}.deliveries set state = 'ready', visible_at = now(), token = null, attempts = greatest(attempts - 1, 0) where topic = $1 and grp = $2 and token = $3`, [
            this.spec.topic,
            this.spec.group,
            row.token,
          ])
          .catch(() => undefined);
        continue;
      }
      this.dispatch(row, sentAt);
    }
    return rows.length === free;
  }

  private dispatch(row: ClaimRow, sentAt: number): void {
    const held: Held = { row, controller: new AbortController(), settled: false, timer: undefined };
    this.held.add(held);
    held.timer = this.ctx.clock.setTimeout(() => {
      held.timer = undefined;
      const text = `visibility timeout of ${this.spec.visibilityTimeoutMs} ms passed`;
      held.controller.abort(new DOMException(text, 'TimeoutError'));
      // The holder is alive but late: settle the lease as a failed attempt now instead of
      // waiting for another claim to notice it (which is what happens when the holder died).
      this.work.track(this.settle(held, () => this.expire(held, text)));
    }, Math.max(0, this.spec.visibilityTimeoutMs - (this.ctx.clock.now() - sentAt)));

    const maxAttempts = this.spec.redelivery.maxAttempts;
    if (row.attempts > maxAttempts) {
      // The last allowed attempt timed out (its lease expired): no delivery is left to make.
      this.work.track(this.deadLetterRow(held, null, maxAttempts).finally(() => this.wake()));
      return;
    }

    this.work.track(handleDelivery(this.handler, this.delivery(held), held));
  }

  private delivery(held: Held): Delivery {
    const { row } = held;
    const message: TransportMessage = {
      id: row.id,
      ...(row.key === null ? {} : { key: row.key }),
      headers: row.headers,
      body: row.body,
    };
    return {
      message,
      topic: this.spec.topic,
      group: this.spec.group,
      partition: row.partition,
      attempt: row.attempts,
      signal: held.controller.signal,
      ack: () => this.settle(held, () => this.ack(held)),
      nack: (error, options) => this.settle(held, () => this.nack(held, error, options?.delayMs)),
      deadLetter: (reason) => this.settle(held, () => this.deadLetterRow(held, reason, undefined)),
    };
  }

  private settle(held: Held, action: () => Promise<void>): Promise<void> {
    return this.held.settle(held, action);
  }

  private forget(held: Held): void {
    this.held.forget(held);
  }

  /**
   * Acks are sent in batches: those settled in the same turn of the event loop, and those
   * settled while a batch is on its way, go together in one `ack_deliveries` call (one
   * round trip and one connection for many handlers). Each resolves when its batch did.
   */
  private ack(held: Held): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pendingAcks.push({ row: held.row, resolve, reject });
      this.scheduleAckFlush();
    });
  }

  private scheduleAckFlush(): void {
    if (this.ackFlushScheduled || this.acking || this.pendingAcks.length === 0) return;
    this.ackFlushScheduled = true;
    setImmediate(() => {
      this.ackFlushScheduled = false;
      void this.flushAcks();
    });
  }

  private async flushAcks(): Promise<void> {
    if (this.acking || this.pendingAcks.length === 0) return;
    this.acking = true;
    const batch = this.pendingAcks.splice(0, MAX_ACK_BATCH);
    try {
      await this.ctx.pool.query(`select ${this.ctx.schema}.ack_deliveries($1, $2, $3, $4, $5, $6) as n`, [
        this.ctx.notifySettled ? this.channel : null,
        this.spec.topic,
        this.spec.group,
        batch.map((ack) => ack.row.partition),
        batch.map((ack) => ack.row.seq),
        batch.map((ack) => ack.row.token),
      ]);
      for (const ack of batch) ack.resolve();
    } catch (err) {
      for (const ack of batch) ack.reject(err);
    } finally {
      this.acking = false;
      // What was acked while this batch was on its way goes at once.
      if (this.pendingAcks.length > 0) void this.flushAcks();
    }
  }

  private async nack(held: Held, error: unknown, delayMs: number | undefined): Promise<void> {
    const { row } = held;
    if (row.attempts >= this.spec.redelivery.maxAttempts) {
      await this.deadLetterRow(held, describeError(error), undefined);
      return;
    }
    const delay = Math.max(0, delayMs ?? this.spec.redelivery.backoffMs(row.attempts));
    await this.ctx.pool.query(
      `update ${this.ctx.schema}.deliveries
          set state = 'ready', visible_at = now() + make_interval(secs => $5::float8 / 1000), token = null,
              errors = errors || jsonb_build_array(${errorEntrySql('$6', '$7')})
        where topic = $1 and grp = $2 and partition = $3 and seq = $4 and token = $8`,
      [this.spec.topic, this.spec.group, row.partition, row.seq, delay, row.attempts, describeError(error), row.token],
    );
    // Other processes see it at their next poll; this one comes back for it on time.
    if (delay > 0) this.wakeAfter(delay);
  }

  /** The lease ran out in this process: a failed attempt, retried at once, or the last one. */
  private async expire(held: Held, text: string): Promise<void> {
    const { row } = held;
    if (row.attempts >= this.spec.redelivery.maxAttempts) {
      await this.deadLetterRow(held, text, undefined);
      return;
    }
    await this.ctx.pool.query(
      `with r as (
         update ${this.ctx.schema}.deliveries
            set state = 'ready', visible_at = now(), token = null,
                errors = errors || jsonb_build_array(${errorEntrySql('$5', '$6')})
          where topic = $1 and grp = $2 and partition = $3 and seq = $4 and token = $7
         returning 1
       )
       select pg_notify($8, 'p:' || $1::text) from r`,
      [this.spec.topic, this.spec.group, row.partition, row.seq, row.attempts, text, row.token, this.channel],
    );
  }

  private async deadLetterRow(held: Held, error: string | null, attempts: number | undefined): Promise<void> {
    const { row } = held;
    held.settled = true;
    try {
      await this.ctx.pool.query(
        `select ${this.ctx.schema}.dead_letter_delivery($1, $2, $3, $4, $5, $6,
                  case when $7::text is null then null else ${errorEntrySql('$8', '$7')} end, $9) as id`,
        [this.channel, this.spec.topic, this.spec.group, row.partition, row.seq, row.token, error, row.attempts, attempts ?? null],
      );
    } finally {
      this.forget(held);
    }
  }
}

function compareSeq(a: string, b: string): number {
  return a.length === b.length ? (a < b ? -1 : a > b ? 1 : 0) : a.length - b.length;
}
