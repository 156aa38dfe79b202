import { counter, gauge, histogram, type Metrics } from '@agora/observability';
import type { BusObserver } from './bus.js';
import type { Transport } from './transport.js';

// The bus never imports a metrics library; these helpers turn its observer callbacks and
// its transports' stats into Prometheus series.

/**
 * An observer for `createBus` that counts what flows: published, delivered, redelivered
 * (attempt > 1), acked, nacked, dead-lettered, and handler latency.
 * @example
 * const bus = createBus({ transport, source: 'feed', messages, observer: busMetrics(metrics) });
 */
export function busMetrics(m: Metrics): BusObserver {
  const published = counter(m, 'bus_messages_published_total', 'Messages published, by topic and type.', ['topic', 'type']);
  const delivered = counter(m, 'bus_messages_delivered_total', 'Deliveries to consumers, by topic and group.', ['topic', 'group']);
  const redelivered = counter(m, 'bus_messages_redelivered_total', 'Deliveries after the first (retries and expired leases).', ['topic', 'group']);
  const acked = counter(m, 'bus_messages_acked_total', 'Messages handled and acknowledged.', ['topic', 'group']);
  const nacked = counter(m, 'bus_messages_nacked_total', 'Failed handlings, to be redelivered or dead-lettered.', ['topic', 'group']);
  const dead = counter(m, 'bus_messages_dead_lettered_total', 'Messages moved to the dead letter queue.', ['topic', 'group']);
  const latency = histogram(m, 'bus_handler_duration_seconds', 'Time from delivery to acknowledgement.', ['topic', 'group']);
  return {
    published: (topic, type) => published.inc({ topic, type }),
    delivered: (topic, group, attempt) => {
      delivered.inc({ topic, group });
      if (attempt > 1) redelivered.inc({ topic, group });
    },
    acked: (topic, group, seconds) => {
      acked.inc({ topic, group });
      latency.observe({ topic, group }, seconds);
    },
    nacked: (topic, group) => nacked.inc({ topic, group }),
    deadLettered: (topic, group) => dead.inc({ topic, group }),
  };
}

/**
 * Consumer lag and queue depth per group, read from the transport at every scrape:
 * `bus_group_pending` (published, not yet acknowledged: the lag), `bus_group_in_flight`,
 * `bus_group_dead_letters`.
 * @example
 * groupMetrics(metrics, transport, [{ topic: 'social.posts', group: 'feed' }]);
 */
export function groupMetrics(m: Metrics, transport: Transport, groups: readonly { topic: string; group: string }[]): void {
  const read = async (field: 'pending' | 'inFlight' | 'deadLetters', set: (labels: { topic: string; group: string }, value: number) => void) => {
    for (const g of groups) {
      const stats = await transport.stats(g.topic, g.group).catch(() => undefined);
      if (stats !== undefined) set(g, stats[field]);
    }
  };
  gauge(m, 'bus_group_pending', 'Messages published and not yet acknowledged by the group (its lag).', ['topic', 'group'], (g) => read('pending', (l, v) => g.set(l, v)));
  gauge(m, 'bus_group_in_flight', 'Messages held by the group’s consumers now.', ['topic', 'group'], (g) => read('inFlight', (l, v) => g.set(l, v)));
  gauge(m, 'bus_group_dead_letters', 'Messages of the group in the dead letter queue.', ['topic', 'group'], (g) => read('deadLetters', (l, v) => g.set(l, v)));
}

/**
 * The outbox relay of a service: `bus_outbox_relayed_total{service}` (pass the returned
 * function as the relay's `onPublished`) and `bus_outbox_backlog{service}` (rows waiting,
 * from `backlog()` at scrape time).
 * @example
 * const onPublished = outboxMetrics(metrics, 'social', async () => Number((await pool.query('select count(*) from social.outbox')).rows[0].count));
 */
export function outboxMetrics(m: Metrics, service: string, backlog: () => Promise<number>): (count: number) => void {
  const relayed = counter(m, 'bus_outbox_relayed_total', 'Messages published from a service outbox.', ['service']);
  const sources = outboxBacklogs.get(m) ?? new Map<string, () => Promise<number>>();
  if (!outboxBacklogs.has(m)) {
    outboxBacklogs.set(m, sources);
    gauge(m, 'bus_outbox_backlog', 'Messages in a service outbox, not yet published.', ['service'], async (g) => {
      for (const [name, read] of sources) g.set({ service: name }, await read().catch(() => Number.NaN));
    });
  }
  sources.set(service, backlog);
  return (count) => relayed.inc({ service }, count);
}

const outboxBacklogs = new WeakMap<Metrics, Map<string, () => Promise<number>>>();
