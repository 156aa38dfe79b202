import type { DbLogger } from '@agora/db';
import type { BusClock } from '../../clock.js';

/** What a {@link ClaimLoop} needs of its consumer's context. */
export interface ClaimLoopContext {
  readonly clock: BusClock;
  readonly logger: DbLogger;
  /** Safety-net poll: missed notifications, other processes' backoffs and expired leases. */
  readonly pollIntervalMs: number;
}

/** What a {@link ClaimLoop} drives: the consumer's engine-specific claim. */
export interface ClaimLoopOptions {
  /** Slots free now; no claim runs without one. */
  readonly free: () => number;
  /** Claims up to `free` deliveries; resolves true when every free slot was filled (there may be more). */
  readonly claim: (free: number) => Promise<boolean>;
}

/**
 * When a claiming consumer (postgres, redis-streams) claims: on `wake()` (a notification, a
 * settlement, a backoff's end) and every poll interval. One claim at a time; wake-ups that
 * arrive during a claim coalesce into one more, so a burst of notifications costs two round
 * trips, not one each. A claim that filled every slot claims again at once.
 *
 * @example
 * const loop = new ClaimLoop(spec, { clock, logger, pollIntervalMs }, { free: () => max - held.size, claim });
 * loop.start();
 * await loop.stop();
 */
export class ClaimLoop {
  private running = true;
  private claiming: Promise<void> | undefined;
  private again = false;
  private pollTimer: unknown;

  constructor(
    private readonly where: { readonly topic: string; readonly group: string },
    private readonly ctx: ClaimLoopContext,
    private readonly options: ClaimLoopOptions,
  ) {}

  /** False once stopped: claims in progress hand back what they got. */
  get active(): boolean {
    return this.running;
  }

  start(): void {
    this.schedulePoll();
    this.wake();
  }

  /** Claims up to the free slots; coalesces wake-ups that arrive during a claim into one more. */
  wake(): void {
    if (!this.running) return;
    if (this.claiming !== undefined) {
      this.again = true;
      return;
    }
    const free = this.options.free();
    if (free <= 0) return;
    this.again = false;
    this.claiming = this.options.claim(free).then(
      (full) => {
        this.claiming = undefined;
        if (this.again || full) this.wake();
      },
      (err: unknown) => {
        this.claiming = undefined;
        this.ctx.logger.warn({ err, topic: this.where.topic, group: this.where.group }, 'bus claim failed; retrying at the next poll');
      },
    );
  }

  /** Stops polling and waking; resolves once a claim in progress has ended. */
  stop(): Promise<void> {
    this.running = false;
    if (this.pollTimer !== undefined) this.ctx.clock.clearTimeout(this.pollTimer);
    return this.claiming ?? Promise.resolve();
  }

  private schedulePoll(): void {
    if (!this.running) return;
    this.pollTimer = this.ctx.clock.setTimeout(() => {
      this.wake();
      this.schedulePoll();
    }, this.ctx.pollIntervalMs);
  }
}
