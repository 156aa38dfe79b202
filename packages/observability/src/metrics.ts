import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * One registry per process. Services hosted in the same process share it and tell their
 * series apart by the `service` label, which is what Prometheus sees when it scrapes the
 * process, whatever the mode.
 */
export interface Metrics {
  readonly registry: Registry;
  /** Serialises the registry in the Prometheus text format. */
  render(): Promise<string>;
  readonly contentType: string;
}

/**
 * @example
 * const metrics = createMetrics();
 * const http = httpMetrics(metrics);
 * http.observe({ service: 'social', method: 'GET', route: '/v1/posts/:id', status: 200 }, 0.004);
 */
export function createMetrics(options: { collectDefaults?: boolean; prefix?: string } = {}): Metrics {
  const registry = new Registry();
  if (options.collectDefaults ?? true) collectDefaultMetrics({ register: registry, prefix: options.prefix ?? '' });
  return { registry, render: () => registry.metrics(), contentType: registry.contentType };
}

type LabelValues<L extends string> = Partial<Record<L, string | number>>;

/** A counter, made once per registry however many components ask for it. */
export function counter<L extends string>(m: Metrics, name: string, help: string, labelNames: readonly L[]): Counter<L> {
  const existing = m.registry.getSingleMetric(name);
  return (existing as Counter<L> | undefined) ?? new Counter({ name, help, labelNames, registers: [m.registry] });
}

/** A gauge, made once per registry; `collect` runs on every scrape. */
export function gauge<L extends string>(
  m: Metrics,
  name: string,
  help: string,
  labelNames: readonly L[],
  collect?: (g: Gauge<L>) => void | Promise<void>,
): Gauge<L> {
  const existing = m.registry.getSingleMetric(name);
  if (existing !== undefined) return existing as Gauge<L>;
  return new Gauge({
    name,
    help,
    labelNames,
    registers: [m.registry],
    ...(collect === undefined ? {} : { collect(this: Gauge<L>) { return collect(this); } }),
  });
}

/** A histogram, made once per registry. */
export function histogram<L extends string>(
  m: Metrics,
  name: string,
  help: string,
  labelNames: readonly L[],
  buckets: number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
): Histogram<L> {
  const existing = m.registry.getSingleMetric(name);
  return (existing as Histogram<L> | undefined) ?? new Histogram({ name, help, labelNames, buckets, registers: [m.registry] });
}

export type HttpLabel = 'service' | 'method' | 'route' | 'status';

/** Request count and latency per route and status: the RED metrics of an HTTP server. */
export interface HttpMetrics {
  observe(labels: LabelValues<HttpLabel>, seconds: number): void;
}

/**
 * @example
 * const http = httpMetrics(metrics);
 * http.observe({ service: 'gateway', method: 'GET', route: '/v1/posts/:id', status: 200 }, 0.012);
 */
export function httpMetrics(m: Metrics): HttpMetrics {
  const requests = counter(m, 'http_requests_total', 'HTTP requests served, by route and status.', ['service', 'method', 'route', 'status']);
  const duration = histogram(m, 'http_request_duration_seconds', 'HTTP request latency, by route and status.', ['service', 'method', 'route', 'status']);
  return {
    observe(labels, seconds) {
      requests.inc(labels);
      duration.observe(labels, seconds);
    },
  };
}

const pools = new WeakMap<Metrics, Map<string, () => Readonly<Record<string, number>>>>();

/**
 * Exports the state of a connection pool as `db_pool_connections{service,state}` (states as
 * the stats function names them: total, idle, waiting, max), read at every scrape. Several
 * services in one process each add their pool under their own `service` label.
 * @example
 * poolMetrics(metrics, 'social', () => poolStats(pool));
 */
export function poolMetrics(m: Metrics, service: string, stats: () => Readonly<Record<string, number>>): void {
  let byService = pools.get(m);
  if (byService === undefined) {
    const sources = new Map<string, () => Readonly<Record<string, number>>>();
    pools.set(m, sources);
    byService = sources;
    gauge(m, 'db_pool_connections', 'Connections of each database pool, by state.', ['service', 'state'], (g) => {
      g.reset();
      for (const [name, read] of sources) {
        for (const [state, value] of Object.entries(read())) g.set({ service: name, state }, value);
      }
    });
  }
  byService.set(service, stats);
}
