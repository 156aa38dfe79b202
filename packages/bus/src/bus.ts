import { randomUUID } from 'node:crypto';
import type { Static } from '@sinclair/typebox';
import { decodeEnvelope, encodeEnvelope, newEnvelope, type Envelope } from './envelope.js';
import { BusError, BusErrorCodes } from './errors.js';
import { MessageCatalog, type MessageDefinition } from './messages.js';
import type { Consumer, Delivery, RedeliveryPolicy, TopicSpec, Transport, TransportMessage } from './transport.js';

/** Events a bus reports, for metrics and logs (the bus never imports a metrics library). */
export interface BusObserver {
  published?(topic: string, type: string): void;
  delivered?(topic: string, group: string, attempt: number): void;
  acked?(topic: string, group: string, seconds: number): void;
  nacked?(topic: string, group: string, error: unknown): void;
  deadLettered?(topic: string, group: string, reason: string): void;
}

export interface BusOptions {
  readonly transport: Transport;
  /** The publishing service, written in every envelope. */
  readonly source: string;
  readonly messages: readonly MessageDefinition[];
  /** Topic settings beyond the defaults (partitions, limits), by topic name. */
  readonly topics?: Readonly<Record<string, Omit<TopicSpec, 'name'>>>;
  readonly observer?: BusObserver;
}

/** What a handler gets besides the envelope. */
export interface HandlerContext {
  readonly delivery: Delivery;
  readonly signal: AbortSignal;
}

export interface SubscribeOptions {
  readonly topic: string;
  readonly group: string;
  /** Handlers by message type; messages of other types on the topic are acknowledged and skipped. */
  readonly handlers: Readonly<Record<string, (envelope: Envelope<never>, context: HandlerContext) => Promise<void>>>;
  readonly maxInFlight?: number;
  readonly visibilityTimeoutMs?: number;
  readonly redelivery?: RedeliveryPolicy;
}

export interface PrepareExtra {
  readonly key?: string;
  readonly headers?: Record<string, string>;
}

/**
 * Validates `data` against its declared schema and wraps it in an envelope, ready for a
 * transport or an outbox. The one place a message is made, for the bus and for outboxes.
 * @throws BusError `unknown_message_type`, `invalid_message`
 * @example
 * await enqueue(tx, 'social', PostCreated.topic, [prepareMessage(catalog, 'social', PostCreated, data)]);
 */
export function prepareMessage(catalog: MessageCatalog, source: string, definition: MessageDefinition, data: unknown, extra: PrepareExtra = {}): TransportMessage {
  catalog.validate(definition.type, data);
  const key = extra.key ?? definition.key?.(data as never);
  const envelope = newEnvelope({ type: definition.type, version: definition.version, source, data, ...(key === undefined ? {} : { key }) });
  // `type` last: a caller's headers must not relabel the message.
  return { id: envelope.id, ...(key === undefined ? {} : { key }), headers: { ...extra.headers, type: definition.type }, body: encodeEnvelope(envelope) };
}

/** Default redelivery: 5 deliveries, 100 ms doubling to 10 s. */
export const defaultRedelivery: RedeliveryPolicy = { maxAttempts: 5, backoffMs: (attempt) => Math.min(10_000, 100 * 2 ** (attempt - 1)) };

/**
 * The bus over a transport: declared message types with schemas checked on both ends,
 * envelopes, subscriptions that route by type, and request/reply.
 * @example
 * const bus = createBus({ transport, source: 'social', messages: [PostCreated] });
 * await bus.start();
 * await bus.publish(PostCreated, { postId: '7', authorId: '42' });
 * await bus.subscribe({ topic: 'social.posts', group: 'feed', handlers: { [PostCreated.type]: async (env) => fanOut(env.data) } });
 */
export function createBus(options: BusOptions) {
  const catalog = new MessageCatalog(options.messages);
  const { transport } = options;
  const observer = guarded(options.observer);
  const consumers: Consumer[] = [];
  const pendingReplies = new Map<string, { resolve: (data: unknown) => void; reject: (err: unknown) => void }>();
  const replyTopic = `_replies.${options.source}.${randomUUID().slice(0, 8)}`;
  let repliesStarted: Promise<void> | undefined;

  const prepare = (definition: MessageDefinition, data: unknown, extra?: PrepareExtra) => prepareMessage(catalog, options.source, definition, data, extra);

  async function send(definition: MessageDefinition, data: unknown, extra: { key?: string; headers?: Record<string, string> } = {}): Promise<TransportMessage> {
    const message = prepare(definition, data, extra);
    await transport.publish(definition.topic, [message]);
    observer.published?.(definition.topic, definition.type);
    return message;
  }

  const bus = {
    catalog,

    /** Declares every topic the catalog names (and reply topics lazily). */
    async start(): Promise<void> {
      for (const topic of catalog.topics()) await transport.declareTopic({ name: topic, ...options.topics?.[topic] });
    },

    /**
     * Validates `data` against the type's schema and publishes it.
     * @throws BusError `unknown_message_type`, `invalid_message`, and the transport's `unknown_topic`, `message_too_large`, `queue_full`
     */
    async publish<D extends MessageDefinition>(definition: D, data: Static<D['schema']>, extra?: { key?: string; headers?: Record<string, string> }): Promise<TransportMessage> {
      // async: an unknown type or invalid data rejects the promise, never throws at the call
      return send(catalog.definition(definition.type), data, extra);
    },

    /**
     * Validates and wraps `data` without sending it: for the transactional outbox, which
     * stores the message in the service's transaction and publishes it after commit.
     * @example
     * await enqueue(tx, 'social', PostCreated.topic, [bus.prepare(PostCreated, data)]);
     */
    prepare<D extends MessageDefinition>(definition: D, data: Static<D['schema']>, extra?: { key?: string; headers?: Record<string, string> }): TransportMessage {
      return prepare(catalog.definition(definition.type), data, extra);
    },

    /**
     * Consumes a topic as `group`. An envelope that does not parse, or whose data fails its
     * schema, goes straight to the dead letter queue with the reason: it would fail on every
     * attempt, and must not block the messages behind it.
     */
    async subscribe(subscription: SubscribeOptions): Promise<Consumer> {
      const { topic, group } = subscription;
      const consumer = await transport.consume(
        {
          topic,
          group,
          maxInFlight: subscription.maxInFlight ?? 16,
          visibilityTimeoutMs: subscription.visibilityTimeoutMs ?? 30_000,
          redelivery: subscription.redelivery ?? defaultRedelivery,
        },
        async (delivery) => {
          const started = performance.now();
          observer.delivered?.(topic, group, delivery.attempt);
          let envelope: Envelope;
          try {
            envelope = decodeEnvelope(delivery.message.body);
            if (catalog.has(envelope.type)) catalog.validate(envelope.type, envelope.data);
          } catch (err) {
            const reason = err instanceof Error ? err.message : String(err);
            observer.deadLettered?.(topic, group, reason);
            return delivery.deadLetter(reason);
          }
          const handler = subscription.handlers[envelope.type];
          if (handler === undefined) return delivery.ack(); // not for this group
          try {
            await handler(envelope as Envelope<never>, { delivery, signal: delivery.signal });
          } catch (err) {
            observer.nacked?.(topic, group, err);
            if (delivery.attempt >= (subscription.redelivery ?? defaultRedelivery).maxAttempts) {
              observer.deadLettered?.(topic, group, err instanceof Error ? err.message : String(err));
            }
            throw err;
          }
          observer.acked?.(topic, group, (performance.now() - started) / 1000);
        },
      );
      consumers.push(consumer);
      return consumer;
    },

    /**
     * Answers requests of `definition` with the handler's result, published to the
     * requester's reply topic with its correlation id.
     */
    async respond<D extends MessageDefinition, R>(definition: D, group: string, handler: (data: Static<D['schema']>) => Promise<R>): Promise<Consumer> {
      return bus.subscribe({
        topic: definition.topic,
        group,
        handlers: {
          [definition.type]: async (envelope, { delivery }) => {
            const replyTo = delivery.message.headers['reply-to'];
            const correlationId = delivery.message.headers['correlation-id'];
            const result = await handler(envelope.data as Static<D['schema']>);
            if (replyTo === undefined || correlationId === undefined) return;
            const reply = newEnvelope({ type: `${definition.type}.reply`, version: 1, source: options.source, data: result });
            await transport.publish(replyTo, [{ id: reply.id, headers: { 'correlation-id': correlationId }, body: encodeEnvelope(reply) }]);
          },
        },
      });
    },

    /**
     * Publishes a request and waits for its reply.
     * @throws BusError `request_timeout` when no reply arrives within `timeoutMs`
     */
    async request<D extends MessageDefinition, R = unknown>(definition: D, data: Static<D['schema']>, { timeoutMs = 5000 }: { timeoutMs?: number } = {}): Promise<R> {
      repliesStarted ??= (async () => {
        await transport.declareTopic({ name: replyTopic });
        await transport.declareGroup(replyTopic, 'replies', { startFrom: 'earliest' });
        consumers.push(
          await transport.consume(
            { topic: replyTopic, group: 'replies', maxInFlight: 64, visibilityTimeoutMs: 30_000, redelivery: { maxAttempts: 1, backoffMs: () => 0 } },
            async (delivery) => {
              const waiting = pendingReplies.get(delivery.message.headers['correlation-id'] ?? '');
              if (waiting === undefined) return; // late: its requester gave up
              try {
                waiting.resolve(decodeEnvelope(delivery.message.body).data);
              } catch (err) {
                waiting.reject(err);
              }
            },
          ),
        );
      })().catch((err: unknown) => {
        repliesStarted = undefined; // let the next request try again
        throw err;
      });
      await repliesStarted;
      const correlationId = randomUUID();
      const reply = new Promise<R>((resolve, reject) => {
        const timer = setTimeout(() => {
          pendingReplies.delete(correlationId);
          reject(new BusError(BusErrorCodes.REQUEST_TIMEOUT, `no reply to ${definition.type} within ${timeoutMs} ms`, { type: definition.type, timeoutMs }));
        }, timeoutMs);
        pendingReplies.set(correlationId, {
          resolve: (value) => {
            clearTimeout(timer);
            pendingReplies.delete(correlationId);
            resolve(value as R);
          },
          reject: (err) => {
            clearTimeout(timer);
            pendingReplies.delete(correlationId);
            reject(err);
          },
        });
      });
      try {
        await send(catalog.definition(definition.type), data, { headers: { 'reply-to': replyTopic, 'correlation-id': correlationId } });
      } catch (err) {
        pendingReplies.get(correlationId)?.reject(err);
      }
      return reply;
    },

    /** Stops every consumer this bus started, letting handlers in flight finish. */
    async stop(graceMs = 10_000): Promise<void> {
      await Promise.all(consumers.splice(0).map((c) => c.stop({ graceMs })));
      repliesStarted = undefined; // its consumer is stopped: a later request starts another
      for (const waiting of pendingReplies.values()) waiting.reject(new BusError(BusErrorCodes.TRANSPORT_CLOSED, 'the bus stopped before the reply'));
    },
  };
  return bus;
}

export type Bus = ReturnType<typeof createBus>;

/**
 * The observer with every callback made safe: an observer is for metrics and logs, and its
 * failure must neither fail a publish that succeeded (the caller would publish again) nor
 * nack a message that was handled.
 */
function guarded(observer: BusObserver | undefined): BusObserver {
  if (observer === undefined) return {};
  const safe = <A extends unknown[]>(fn: ((...args: A) => void) | undefined) =>
    fn === undefined
      ? undefined
      : (...args: A) => {
          try {
            fn.apply(observer, args);
          } catch {
            // ignored: see above
          }
        };
  return {
    published: safe(observer.published),
    delivered: safe(observer.delivered),
    acked: safe(observer.acked),
    nacked: safe(observer.nacked),
    deadLettered: safe(observer.deadLettered),
  };
}
