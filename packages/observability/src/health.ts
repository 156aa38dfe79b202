/**
 * A dependency a component needs in order to serve: a database, an upstream, a broker.
 * `check` resolves when the dependency answers and rejects with the reason otherwise.
 */
export interface HealthCheck {
  readonly name: string;
  check(signal: AbortSignal): Promise<void>;
}

export interface HealthReport {
  readonly status: 'ok' | 'fail';
  readonly checks: Record<string, { status: 'ok' | 'fail'; durationMs: number; error?: string }>;
}

/**
 * Runs every check at once, each bounded by `timeoutMs`, and reports them all, so that
 * `/readyz` says which dependency is missing instead of only that something is.
 * @example
 * const report = await runHealthChecks([{ name: 'db', check: () => pool.query('select 1').then(() => {}) }]);
 * report.status; // 'ok'
 */
export async function runHealthChecks(checks: readonly HealthCheck[], timeoutMs = 2000): Promise<HealthReport> {
  const entries = await Promise.all(
    checks.map(async (c) => {
      const started = performance.now();
      // A timer of our own rather than AbortSignal.timeout, whose timer is unref'd: in a process
      // with nothing else running (a CLI check), a hanging check would let it exit unreported.
      const controller = new AbortController();
      const { signal } = controller;
      const timer = setTimeout(() => controller.abort(new DOMException(`no answer within ${timeoutMs} ms`, 'TimeoutError')), timeoutMs);
      try {
        await Promise.race([
          c.check(signal),
          new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(new Error(`no answer within ${timeoutMs} ms`)), { once: true })),
        ]);
        return [c.name, { status: 'ok' as const, durationMs: Math.round(performance.now() - started) }] as const;
      } catch (err) {
        const error = err instanceof Error ? err.message : String(err);
        return [c.name, { status: 'fail' as const, durationMs: Math.round(performance.now() - started), error }] as const;
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  const status = entries.every(([, r]) => r.status === 'ok') ? 'ok' : 'fail';
  return { status, checks: Object.fromEntries(entries) };
}
