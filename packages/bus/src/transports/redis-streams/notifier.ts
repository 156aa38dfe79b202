import type { Redis } from 'ioredis';
import type { DbLogger } from '@agora/db';

import { TopicListeners, type TopicListener as Listener } from '../shared/topic-listeners.js';

export type { TopicEvent } from '../shared/topic-listeners.js';

/**
 * One subscriber connection per transport, made on first subscription and quit on `close()`.
 * Dispatches `p:<topic>` / `s:<topic>` messages of the transport's channel to the topic's
 * listeners. ioredis resubscribes after a reconnect; what was published meanwhile is lost,
 * and the consumers' polls cover the gap.
 */
export class Notifier {
  private readonly listeners = new TopicListeners();
  private subscriber: Redis | undefined;
  private subscribing: Promise<void> | undefined;

  constructor(
    private readonly connect: () => Redis,
    private readonly channel: string,
    private readonly logger: DbLogger,
  ) {}

  /** Registers `listener` for `topic`; resolves once SUBSCRIBE is in place (or failed: polls take over). */
  async subscribe(topic: string, listener: Listener): Promise<() => void> {
    const unsubscribe = this.listeners.add(topic, listener);
    this.subscribing ??= this.start();
    await this.subscribing;
    return unsubscribe;
  }

  private async start(): Promise<void> {
    const subscriber = this.connect();
    this.subscriber = subscriber;
    subscriber.on('error', (err: unknown) => this.logger.warn({ err }, 'bus notification connection error'));
    subscriber.on('message', (_channel: string, payload: string) => this.listeners.dispatch(payload));
    try {
      await subscriber.subscribe(this.channel);
    } catch (err) {
      this.logger.warn({ err, channel: this.channel }, 'bus SUBSCRIBE failed; consumers poll');
    }
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
