import type pg from 'pg';
import type { DbLogger } from '@agora/db';
import type { BusClock } from '../../clock.js';

import { TopicListeners, type TopicListener as Listener } from '../shared/topic-listeners.js';

export type { TopicEvent } from '../shared/topic-listeners.js';

/**
 * One LISTEN connection per transport, checked out of the pool on first subscription and
 * held until `close()`. Dispatches `p:<topic>` / `s:<topic>` payloads to subscribers of the
 * topic. If the connection breaks it reconnects after `retryMs` and wakes every subscriber
 * (NOTIFYs sent meanwhile are lost; the consumers' polls cover the gap anyway).
 */
export class Notifier {
  private readonly listeners = new TopicListeners();
  private client: pg.PoolClient | undefined;
  private connecting: Promise<void> | undefined;
  private retryTimer: unknown;
  private closed = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly channel: string,
    private readonly clock: BusClock,
    private readonly logger: DbLogger,
    private readonly retryMs: number,
  ) {}

  /** Registers `listener` for `topic`; resolves once LISTEN is in place (or failed: polls take over). */
  async subscribe(topic: string, listener: Listener): Promise<() => void> {
    const unsubscribe = this.listeners.add(topic, listener);
    await this.ensure();
    return unsubscribe;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer !== undefined) this.clock.clearTimeout(this.retryTimer);
    await this.connecting?.catch(() => undefined);
    const client = this.client;
    this.client = undefined;
    if (client === undefined) return;
    try {
      await client.query(`unlisten ${quoteIdent(this.channel)}`);
      client.release();
    } catch (err) {
      client.release(err instanceof Error ? err : true);
    }
  }

  private ensure(): Promise<void> {
    if (this.closed || this.client !== undefined) return Promise.resolve();
    this.connecting ??= this.connect().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async connect(): Promise<void> {
    let client: pg.PoolClient | undefined;
    try {
      client = await this.pool.connect();
      client.on('notification', this.onNotification);
      client.on('error', this.onError);
      await client.query(`listen ${quoteIdent(this.channel)}`);
      if (this.closed) {
        client.release();
        return;
      }
      this.client = client;
    } catch (err) {
      if (client !== undefined) {
        client.off('notification', this.onNotification);
        client.off('error', this.onError);
        client.release(err instanceof Error ? err : true);
      }
      this.logger.warn({ err, channel: this.channel }, 'bus LISTEN failed; consumers fall back to polling until it is back');
      this.scheduleRetry();
    }
  }

  private readonly onNotification = (message: pg.Notification): void => {
    this.listeners.dispatch(message.payload ?? '');
  };

  private readonly onError = (err: Error): void => {
    const client = this.client;
    this.client = undefined;
    if (client !== undefined) {
      client.off('notification', this.onNotification);
      client.off('error', this.onError);
      client.release(err);
    }
    if (this.closed) return;
    this.logger.warn({ err, channel: this.channel }, 'bus LISTEN connection lost; reconnecting');
    this.scheduleRetry();
  };

  private scheduleRetry(): void {
    if (this.closed || this.retryTimer !== undefined) return;
    this.retryTimer = this.clock.setTimeout(() => {
      this.retryTimer = undefined;
      if (this.listeners.size === 0) return;
      void this.ensure().then(() => {
        // Whatever was published while we were deaf is claimable now.
        if (this.client !== undefined) this.listeners.broadcast('published');
      });
    }, this.retryMs);
  }
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
