import { createMetrics } from '@agora/observability';
import { Type } from '@sinclair/typebox';
import { describe, expect, it } from 'vitest';
import { busMetrics, createBus, createMemoryTransport, defineMessage, groupMetrics, outboxMetrics } from '../src/index.js';

const Ping = defineMessage({ type: 'test.ping', version: 1, topic: 'pings', schema: Type.Object({ n: Type.Integer() }) });

/** One sample of the text exposition, by name and exact labels. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).sort().join(',');
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)\{([^}]*)\} (\S+)$/.exec(line);
    if (m?.[1] === name && m[2]!.split(',').sort().join(',') === want) return Number(m[3]);
  }
  return undefined;
}

describe('bus metrics', () => {
  it('counts published, delivered, redelivered, acked, nacked and dead-lettered messages, and reads group lag at scrape', async () => {
    const metrics = createMetrics({ collectDefaults: false });
    const transport = createMemoryTransport();
    const bus = createBus({ transport, source: 'test', messages: [Ping], observer: busMetrics(metrics) });
    await bus.start();
    await transport.declareGroup('pings', 'g');
    groupMetrics(metrics, transport, [{ topic: 'pings', group: 'g' }]);
    await bus.publish(Ping, { n: 1 });
    await bus.publish(Ping, { n: 2 });
    expect(sample(await metrics.render(), 'bus_group_pending', { topic: 'pings', group: 'g' })).toBe(2);

    const seen: number[] = [];
    await bus.subscribe({
      topic: 'pings',
      group: 'g',
      redelivery: { maxAttempts: 2, backoffMs: () => 1 },
      handlers: {
        [Ping.type]: async (env) => {
          const n = (env.data as { n: number }).n;
          seen.push(n);
          if (n === 2) throw new Error('two always fails');
        },
      },
    });
    for (let i = 0; i < 200 && seen.length < 3; i++) await new Promise((r) => setTimeout(r, 5));
    await bus.stop();
    const text = await metrics.render();
    const g = { topic: 'pings', group: 'g' };
    expect(sample(text, 'bus_messages_published_total', { topic: 'pings', type: 'test.ping' })).toBe(2);
    expect(sample(text, 'bus_messages_delivered_total', g)).toBe(3);
    expect(sample(text, 'bus_messages_redelivered_total', g)).toBe(1);
    expect(sample(text, 'bus_messages_acked_total', g)).toBe(1);
    expect(sample(text, 'bus_messages_nacked_total', g)).toBe(2);
    expect(sample(text, 'bus_messages_dead_lettered_total', g)).toBe(1);
    expect(sample(text, 'bus_group_pending', g)).toBe(0);
    expect(sample(text, 'bus_group_dead_letters', g)).toBe(1);
    await transport.close();
  });

  it('counts what an outbox relay published and reads its backlog at scrape', async () => {
    const metrics = createMetrics({ collectDefaults: false });
    let backlog = 7;
    const onPublished = outboxMetrics(metrics, 'social', async () => backlog);
    onPublished(3);
    onPublished(2);
    backlog = 4;
    const text = await metrics.render();
    expect(sample(text, 'bus_outbox_relayed_total', { service: 'social' })).toBe(5);
    expect(sample(text, 'bus_outbox_backlog', { service: 'social' })).toBe(4);
  });
});
