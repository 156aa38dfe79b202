import { createInbox, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { MAX_TIMER_MS, type BusClock } from '../../clock.js';
import type { Consumer, Delivery, DeliveryHandler, SubscriptionSpec, TransportMessage } from '../../transport.js';
import type { AttemptError, AttemptLog } from './attempts.js';
import type { NatsDeadLetterStore } from './dead-letters.js';
import { decodeMessage, describeError, MESSAGE_HEADER, ONLY_GROUP_HEADER, type Names } from './names.js';
import { IdleWait } from '../shared/idle.js';

/** How long a pull waits on the server when every partition has a slot of its own. */
const LONG_PULL_MS = 5_000;
/** How long a pull waits when partitions outnumber `maxInFlight`: an idle partition soon lets another have the slot. */
const SHORT_PULL_MS = 150;
/** Pause after an unexpected pull answer (consumer gone, server busy), so a loop never spins. */
const ERROR_PAUSE_MS = 250;
/** An answer to a pull or an ack lost on the way: give up on it after this much extra. */
const REQUEST_SLACK_MS = 5_000;

export interface ConsumerContext {
  readonly nc: NatsConnection;
  readonly names: Names;
  readonly partitions: number;
  readonly clock: BusClock;
  readonly attempts: AttemptLog;
  readonly deadLetters: NatsDeadLetterStore;
  readonly onStopped: (consumer: NatsConsumer) => void;
}

/** Delivery count and stream sequence from a JetStream ack subject (v1 and v2 layouts). */
function parseAckSubject(reply: string): { delivered: number; seq: number } {
  const tokens = reply.split('.');
  // v1: $JS.ACK.<stream>.<consumer>.<delivered>.<seq>...; v2 adds <domain>.<account hash> after ACK.
  const at = tokens.length === 9 ? 4 : 6;
  return { delivered: Number(tokens[at]), seq: Number(tokens[at + 1]) };
}

/** One delivery of a message; settles at most once, and not at all after its visibility timeout. */
class NatsDelivery implements Delivery {
  open = true;
  timer: unknown;
  readonly controller = new AbortController();

  constructor(
    private readonly consumer: NatsConsumer,
    readonly reply: string,
    readonly message: TransportMessage,
    readonly partition: number,
    readonly attempt: number,
    readonly seq: number,
  ) {}

  get topic(): string {
    return this.consumer.spec.topic;
  }
  get group(): string {
    return this.consumer.spec.group;
  }
  get signal(): AbortSignal {
    return this.controller.signal;
  }
  ack(): Promise<void> {
    return this.consumer.ack(this);
  }
  nack(error: unknown, options?: { delayMs?: number }): Promise<void> {
    return this.consumer.fail(this, error, options?.delayMs);
  }
  deadLetter(reason: string): Promise<void> {
    return this.consumer.deadLetter(this, reason);
  }
}

/**
 * A consumer of a group. Each partition of the group is a durable pull consumer with
 * `max_ack_pending: 1`, shared by every Agora consumer of the group: the server hands a
 * partition's next message out only once the previous one is settled, whoever held it. This
 * consumer runs one pull loop per partition; a loop takes one of `maxInFlight` slots before it
 * pulls (one message at a time) and keeps it until the handler returns, so prefetched and
 * running messages never exceed `maxInFlight`. When partitions outnumber slots, pulls wait
 * briefly on the server so idle partitions hand their slot on.
 *
 * Settling: ack is `+ACK` (confirmed), a failure records its error and `-NAK` with the backoff as
 * delay (the message keeps its partition meanwhile), the last failure or `deadLetter` publishes
 * the dead letter and `+TERM`s the original. The visibility timeout is the durable's
 * `ack_wait`; locally a timer aborts the delivery's signal and voids its late settlements.
 */
export class NatsConsumer implements Consumer {
  private freeSlots: number;
  private readonly slotWaiters: (() => void)[] = [];
  private readonly pulls = new Set<() => void>();
  private readonly held = new Set<NatsDelivery>();
  private running = 0;
  private stopped = false;
  private stopping: Promise<void> | undefined;
  private readonly idle = new IdleWait();
  private readonly pullMs: number;

  constructor(
    readonly spec: SubscriptionSpec,
    private readonly handler: DeliveryHandler,
    private readonly ctx: ConsumerContext,
  ) {
    this.freeSlots = spec.maxInFlight;
    this.pullMs = ctx.partitions <= spec.maxInFlight ? LONG_PULL_MS : SHORT_PULL_MS;
  }

  get inFlight(): number {
    return this.held.size;
  }

  start(): void {
    for (let p = 0; p < this.ctx.partitions; p++) void this.loop(p);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.ctx.clock.setTimeout(resolve, ms));
  }

  private acquire(): Promise<void> | undefined {
    if (this.freeSlots > 0) {
      this.freeSlots--;
      return undefined;
    }
    return new Promise((resolve) => this.slotWaiters.push(resolve));
  }

  private release(): void {
    const next = this.slotWaiters.shift();
    if (next === undefined) this.freeSlots++;
    else next();
  }

  private async loop(partition: number): Promise<void> {
    while (!this.stopped) {
      await this.acquire();
      if (this.stopped) {
        this.release();
        break;
      }
      const answer = await this.pull(partition);
      if (answer.msg === undefined) {
        this.release();
        if (answer.pause) await this.sleep(ERROR_PAUSE_MS);
        continue;
      }
      this.running++;
      try {
        await this.handle(partition, answer.msg);
      } finally {
        this.running--;
        this.release();
        if (this.running === 0) this.idle.notify();
      }
    }
  }

  /** One pull request for one message; undefined on a timeout, an error status or a stop. */
  private pull(partition: number): Promise<{ msg?: Msg; pause: boolean }> {
    const { nc, names } = this.ctx;
    return new Promise((resolve) => {
      let done = false;
      const inbox = createInbox();
      const finish = (result: { msg?: Msg; pause: boolean }) => {
        if (done) return;
        done = true;
        sub.unsubscribe();
        this.pulls.delete(cancel);
        this.ctx.clock.clearTimeout(guard);
        resolve(result);
      };
      // Unsubscribing withdraws the request: the server only hands a message to a pull whose inbox has interest.
      const cancel = () => finish({ pause: false });
      const sub = nc.subscribe(inbox, {
        callback: (err, msg) => {
          if (err !== null) return finish({ pause: true });
          if (msg.reply === undefined || msg.reply === '') {
            const code = msg.headers?.code ?? 0;
            return finish({ pause: code !== 408 && code !== 404 });
          }
          finish({ msg, pause: false });
        },
      });
      const guard = this.ctx.clock.setTimeout(() => finish({ pause: true }), this.pullMs + REQUEST_SLACK_MS);
      this.pulls.add(cancel);
      const stream = names.stream(this.spec.topic);
      const durable = names.durable(this.spec.group, partition);
      try {
        nc.publish(`$JS.API.CONSUMER.MSG.NEXT.${stream}.${durable}`, JSON.stringify({ batch: 1, expires: this.pullMs * 1_000_000 }), { reply: inbox });
      } catch {
        finish({ pause: true });
      }
    });
  }

  private async handle(partition: number, msg: Msg): Promise<void> {
    const reply = msg.reply as string;
    const { delivered, seq } = parseAckSubject(reply);
    const only = msg.headers?.get(ONLY_GROUP_HEADER) ?? '';
    if (only !== '' && only !== this.spec.group) {
      // A dead letter replayed for another group: not ours to handle.
      await this.request(reply, '+ACK').catch(() => undefined);
      return;
    }
    const message = decodeMessage(msg.headers?.get(MESSAGE_HEADER), msg.string(), `${this.spec.topic}:${seq}`);
    const delivery = new NatsDelivery(this, reply, message, partition, delivered, seq);
    if (delivered > this.spec.redelivery.maxAttempts) {
      // Its last attempt timed out (the holder died): no attempt left to give.
      delivery.open = false;
      await this.bury(delivery, undefined, this.spec.redelivery.maxAttempts).catch(() => undefined);
      return;
    }
    this.held.add(delivery);
    const timeout = this.spec.visibilityTimeoutMs;
    delivery.timer = this.ctx.clock.setTimeout(() => {
      if (!this.close(delivery)) return;
      delivery.controller.abort(new DOMException(`visibility timeout of ${timeout} ms passed`, 'TimeoutError'));
    }, Math.min(timeout, MAX_TIMER_MS));
    try {
      await this.handler(delivery);
    } catch (err) {
      await this.fail(delivery, err, undefined).catch(() => undefined);
      return;
    }
    await this.ack(delivery).catch(() => undefined);
  }

  /** Marks a delivery settled; false if it was already (or timed out). */
  private close(delivery: NatsDelivery): boolean {
    if (!delivery.open) return false;
    delivery.open = false;
    this.ctx.clock.clearTimeout(delivery.timer);
    this.held.delete(delivery);
    return true;
  }

  private request(subject: string, payload: string): Promise<Msg> {
    return this.ctx.nc.request(subject, payload, { timeout: REQUEST_SLACK_MS });
  }

  private errorAt(attempt: number, error: string): AttemptError {
    return { at: new Date(this.ctx.clock.now()).toISOString(), attempt, error };
  }

  async ack(delivery: NatsDelivery): Promise<void> {
    if (!this.close(delivery)) return;
    await this.request(delivery.reply, '+ACK');
    if (delivery.attempt > 1) await this.ctx.attempts.clear(delivery.topic, delivery.group, delivery.seq).catch(() => undefined);
  }

  async fail(delivery: NatsDelivery, error: unknown, delayMs: number | undefined): Promise<void> {
    if (!this.close(delivery)) return;
    const entry = this.errorAt(delivery.attempt, describeError(error));
    const { redelivery } = this.spec;
    if (delivery.attempt >= redelivery.maxAttempts) return this.bury(delivery, entry, delivery.attempt);
    await this.ctx.attempts.append(delivery.topic, delivery.group, delivery.seq, entry, delivery.attempt === 1 ? [] : undefined);
    const delay = Math.max(0, Math.round(delayMs ?? redelivery.backoffMs(delivery.attempt)));
    this.ctx.nc.publish(delivery.reply, delay > 0 ? `-NAK ${JSON.stringify({ delay: delay * 1_000_000 })}` : '-NAK');
  }

  async deadLetter(delivery: NatsDelivery, reason: string): Promise<void> {
    if (!this.close(delivery)) return;
    await this.bury(delivery, this.errorAt(delivery.attempt, reason), delivery.attempt);
  }

  /**
   * Publishes the dead letter with every error, then terminates the original. Attempts that left
   * no error (their holder's visibility timeout passed) are filled in, stamped now.
   */
  private async bury(delivery: NatsDelivery, last: AttemptError | undefined, attempts: number): Promise<void> {
    const { topic, group, seq } = delivery;
    const known = delivery.attempt === 1 ? [] : await this.ctx.attempts.read(topic, group, seq);
    const byAttempt = new Map<number, AttemptError>();
    for (const entry of known) byAttempt.set(entry.attempt, entry);
    if (last !== undefined) byAttempt.set(last.attempt, last);
    const timeout = `visibility timeout of ${this.spec.visibilityTimeoutMs} ms passed`;
    const errors: AttemptError[] = [];
    for (let attempt = 1; attempt <= attempts; attempt++) errors.push(byAttempt.get(attempt) ?? this.errorAt(attempt, timeout));
    await this.ctx.deadLetters.add({ topic, group, message: delivery.message, attempts, errors, deadAt: new Date(this.ctx.clock.now()).toISOString() });
    await this.request(delivery.reply, '+TERM');
    if (delivery.attempt > 1) await this.ctx.attempts.clear(topic, group, seq).catch(() => undefined);
  }

  stop(options: { graceMs?: number } = {}): Promise<void> {
    this.stopping ??= this.shutdown(options.graceMs ?? 30_000);
    return this.stopping;
  }

  private async shutdown(graceMs: number): Promise<void> {
    this.stopped = true;
    for (const cancel of [...this.pulls]) cancel();
    for (const waiter of this.slotWaiters.splice(0)) waiter();
    if (this.running > 0 && graceMs > 0) await this.idle.wait(this.ctx.clock, graceMs);
    // Past the grace: give the rest back at once (the attempt is spent), and tell their handlers.
    for (const delivery of [...this.held]) {
      if (!this.close(delivery)) continue;
      delivery.controller.abort(new DOMException('consumer stopped', 'AbortError'));
      if (!this.ctx.nc.isClosed()) this.ctx.nc.publish(delivery.reply, '-NAK');
    }
    if (!this.ctx.nc.isClosed()) await this.ctx.nc.flush().catch(() => undefined);
    this.ctx.onStopped(this);
  }
}
