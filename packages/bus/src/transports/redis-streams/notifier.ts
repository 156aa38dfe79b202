import type { Redis } from 'ioredis';
import type { DbLogger } from '@agora/db';

/** What a notification said: messages became claimable ('published'), or room was made ('settled'). */
export type TopicEvent = 'published' | 'settled';
type Listener = (event: TopicEvent) => void;

/**
 * One subscriber connection per transport, made on first subscription and quit on `close()`.
 * Dispatches `p:<topic>` / `s:<topic>` messages of the transport's channel to the topic's
 * listeners. ioredis resubscribes after a reconnect; what was published meanwhile is lost,
 * and the consumers' polls cover the gap.
 */
export class Notifier {
  private readonly listeners = new Map<string, Set<Listener>>();
  private subscriber: Redis | undefined;
  private subscribing: Promise<void> | undefined;

  constructor(
    private readonly connect: () => Redis,
    private readonly channel: string,
    private readonly logger: DbLogger,
  ) {}

  /** Registers `listener` for `topic`; resolves once SUBSCRIBE is in place (or failed: polls take over). */
  async subscribe(topic: string, listener: Listener): Promise<() => void> {
    let set = this.listeners.get(topic);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(topic, set);
    }
    set.add(listener);
    const unsubscribe = () => {
      const current = this.listeners.get(topic);
      current?.delete(listener);
      if (current?.size === 0) this.listeners.delete(topic);
    };
    this.subscribing ??= this.start();
    await this.subscribing;
    return unsubscribe;
  }

  private async start(): Promise<void> {
    const subscriber = this.connect();
    this.subscriber = subscriber;
    subscriber.on('error', (err: unknown) => this.logger.warn({ err }, 'bus notification connection error'));
    subscriber.on('message', (_channel: string, payload: string) => this.dispatch(payload));
    try {
      await subscriber.subscribe(this.channel);
    } catch (err) {
      this.logger.warn({ err, channel: this.channel }, 'bus SUBSCRIBE failed; consumers poll');
    }
  }

  private dispatch(payload: string): void {
    const event: TopicEvent | undefined = payload.startsWith('p:') ? 'published' : payload.startsWith('s:') ? 'settled' : undefined;
    if (event === undefined) return;
    const set = this.listeners.get(payload.slice(2));
    if (set === undefined) return;
    for (const listener of [...set]) listener(event);
  }

  async close(): Promise<void> {
    await this.subscribing?.catch(() => undefined);
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    if (subscriber === undefined) return;
    try {
      await subscriber.quit();
    } catch {
      subscriber.disconnect();
    }
  }
}
