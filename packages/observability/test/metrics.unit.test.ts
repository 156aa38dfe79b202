import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { counter, createMetrics, gauge, histogram, httpMetrics, poolMetrics } from '../src/index.js';

/** Prometheus metric names allow [a-zA-Z_:][a-zA-Z0-9_:]*; a UUID is made to fit. */
const uniqueName = (prefix: string) => `${prefix}_${randomUUID().replaceAll('-', '_')}`;

describe('httpMetrics', () => {
  it('shows request counts and latency by service, method, route and status in render()', async () => {
    // given a registry without the default process metrics
    const metrics = createMetrics({ collectDefaults: false });
    const http = httpMetrics(metrics);
    // when two requests to one route and one to another are observed
    http.observe({ service: 'social', method: 'GET', route: '/v1/posts/:id', status: 200 }, 0.004);
    http.observe({ service: 'social', method: 'GET', route: '/v1/posts/:id', status: 200 }, 0.006);
    http.observe({ service: 'social', method: 'POST', route: '/v1/posts', status: 201 }, 0.02);
    // then the text format has a series per label set with its count
    const text = await metrics.render();
    expect(text).toContain('http_requests_total{service="social",method="GET",route="/v1/posts/:id",status="200"} 2');
    expect(text).toContain('http_requests_total{service="social",method="POST",route="/v1/posts",status="201"} 1');
    expect(text).toContain('http_request_duration_seconds_count{service="social",method="GET",route="/v1/posts/:id",status="200"} 2');
    expect(metrics.contentType).toContain('text/plain');
  });

  it('shares the same series when two components of a process ask for them', async () => {
    const metrics = createMetrics({ collectDefaults: false });
    httpMetrics(metrics).observe({ service: 'identity', method: 'GET', route: '/a', status: 200 }, 0.001);
    httpMetrics(metrics).observe({ service: 'identity', method: 'GET', route: '/a', status: 200 }, 0.001);
    expect(await metrics.render()).toContain('http_requests_total{service="identity",method="GET",route="/a",status="200"} 2');
  });
});

describe('counter, gauge, histogram', () => {
  it('returns the same counter when asked twice for the same name', async () => {
    const metrics = createMetrics({ collectDefaults: false });
    const name = uniqueName('jobs_total');
    const first = counter(metrics, name, 'Jobs done.', ['queue']);
    const second = counter(metrics, name, 'Jobs done.', ['queue']);
    expect(second).toBe(first);
    first.inc({ queue: 'mail' });
    second.inc({ queue: 'mail' });
    expect(await metrics.render()).toContain(`${name}{queue="mail"} 2`);
  });

  it('returns the same gauge and histogram when asked twice', () => {
    const metrics = createMetrics({ collectDefaults: false });
    const g = uniqueName('depth');
    const h = uniqueName('latency_seconds');
    expect(gauge(metrics, g, 'Depth.', [])).toBe(gauge(metrics, g, 'Depth.', []));
    expect(histogram(metrics, h, 'Latency.', [])).toBe(histogram(metrics, h, 'Latency.', []));
  });

  it('runs a gauge collect function on every scrape', async () => {
    const metrics = createMetrics({ collectDefaults: false });
    const name = uniqueName('queue_depth');
    let depth = 3;
    gauge(metrics, name, 'Queue depth.', [], (g) => g.set(depth));
    expect(await metrics.render()).toContain(`${name} 3`);
    depth = 5;
    expect(await metrics.render()).toContain(`${name} 5`);
  });

  it('keeps registries apart', async () => {
    const a = createMetrics({ collectDefaults: false });
    const b = createMetrics({ collectDefaults: false });
    const name = uniqueName('only_in_a');
    counter(a, name, 'Only in a.', []).inc();
    expect(await a.render()).toContain(name);
    expect(await b.render()).not.toContain(name);
  });

  it('collects the default process metrics unless told not to', async () => {
    const text = await createMetrics({ prefix: 'agora_test_' }).render();
    expect(text).toContain('agora_test_process_cpu_user_seconds_total');
  });
});

describe('poolMetrics', () => {
  it('reports the pool of each service under its own label, read at every scrape', async () => {
    // given two services of one process adding their pools
    const metrics = createMetrics({ collectDefaults: false });
    let socialIdle = 2;
    poolMetrics(metrics, 'social', () => ({ total: 5, idle: socialIdle }));
    poolMetrics(metrics, 'identity', () => ({ total: 3, idle: 3 }));
    // when the registry is scraped twice, the pool changing in between
    const first = await metrics.render();
    socialIdle = 4;
    const second = await metrics.render();
    // then each scrape shows the state of that moment, per service and state
    expect(first).toContain('db_pool_connections{service="social",state="idle"} 2');
    expect(first).toContain('db_pool_connections{service="identity",state="total"} 3');
    expect(second).toContain('db_pool_connections{service="social",state="idle"} 4');
    expect(second).not.toContain('db_pool_connections{service="social",state="idle"} 2');
  });
});
