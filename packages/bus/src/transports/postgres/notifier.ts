import type pg from 'pg';
import type { DbLogger } from '@agora/db';
import type { BusClock } from '../../clock.js';

/** What a NOTIFY said: messages became claimable ('published'), or room was made ('settled'). */
export type TopicEvent = 'published' | 'settled';
type Listener = (event: TopicEvent) => void;

/**
 * One LISTEN connection per transport, checked out of the pool on first subscription and
 * held until `close()`. Dispatches `p:<topic>` / `s:<topic>` payloads to subscribers of the
 * topic. If the connection breaks it reconnects after `retryMs` and wakes every subscriber
 * (NOTIFYs sent meanwhile are lost; the consumers' polls cover the gap anyway).
 */
export class Notifier {
  private readonly listeners = new Map<string, Set<Listener>>();
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
    const payload = message.payload ?? '';
    const topic = payload.slice(2);
    const event: TopicEvent | undefined = payload.startsWith('p:') ? 'published' : payload.startsWith('s:') ? 'settled' : undefined;
    if (event === undefined) return;
    for (const listener of this.listeners.get(topic) ?? []) listener(event);
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
        if (this.client !== undefined) for (const set of this.listeners.values()) for (const listener of set) listener('published');
      });
    }, this.retryMs);
  }
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
