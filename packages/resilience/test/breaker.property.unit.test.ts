import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CircuitBreaker } from '../src/breaker.js';
import type { CircuitBreakerOptions, CircuitState, FailureRateWindow } from '../src/breaker.js';
import { isBrokenCircuitError } from '../src/errors.js';
import { createFakeClock } from '../src/testing.js';

type Options = Omit<CircuitBreakerOptions, 'clock'>;

const windowArb: fc.Arbitrary<FailureRateWindow> = fc.oneof(
  fc.record({ kind: fc.constant('count' as const), size: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ kind: fc.constant('time' as const), ms: fc.integer({ min: 1, max: 3000 }), buckets: fc.integer({ min: 1, max: 12 }) }),
);

const optionsArb: fc.Arbitrary<Options> = fc
  .record({
    consecutiveFailures: fc.option(fc.integer({ min: 1, max: 5 }), { nil: undefined }),
    failureRate: fc.option(
      fc
        .record({ threshold: fc.integer({ min: 1, max: 10 }).map((n) => n / 10), minimumCalls: fc.integer({ min: 1, max: 6 }), window: windowArb })
        // A count window can never hold more than `size` calls; the breaker rejects that option.
        .map((r) => (r.window.kind === 'count' ? { ...r, minimumCalls: Math.min(r.minimumCalls, r.window.size) } : r)),
      { nil: undefined },
    ),
    openMs: fc.integer({ min: 1, max: 2000 }),
    halfOpenMaxCalls: fc.integer({ min: 1, max: 3 }),
    halfOpenSuccesses: fc.integer({ min: 1, max: 4 }),
  })
  .filter((o) => o.consecutiveFailures !== undefined || o.failureRate !== undefined);

/** `ignore` throws an error the breaker's `isFailure` filter lets through uncounted. */
type Outcome = 'succeed' | 'fail' | 'ignore';
// Failures weigh as much as successes so that circuits trip and recover often within a run.
const outcomeArb: fc.Arbitrary<Outcome> = fc.oneof(
  { arbitrary: fc.constant('succeed' as const), weight: 3 },
  { arbitrary: fc.constant('fail' as const), weight: 3 },
  { arbitrary: fc.constant('ignore' as const), weight: 1 },
);

/** Clock moves, biased to land on the edges: exactly openMs, one short of it, within a bucket. */
const advanceArb = (options: Options): fc.Arbitrary<number> =>
  fc.oneof(fc.integer({ min: 0, max: 2500 }), fc.constant(options.openMs), fc.constant(options.openMs - 1), fc.integer({ min: 0, max: 50 }));

type Command =
  | { readonly kind: 'call'; readonly outcome: Outcome }
  | { readonly kind: 'start' }
  | { readonly kind: 'finish'; readonly index: number; readonly outcome: Outcome }
  | { readonly kind: 'advance'; readonly ms: number };

const commandArb = (options: Options): fc.Arbitrary<Command> =>
  fc.oneof(
    fc.record({ kind: fc.constant('call' as const), outcome: outcomeArb }),
    fc.record({ kind: fc.constant('start' as const) }),
    fc.record({ kind: fc.constant('finish' as const), index: fc.nat(), outcome: outcomeArb }),
    fc.record({ kind: fc.constant('advance' as const), ms: advanceArb(options) }),
  );

/** Options, and up to `maxLength` steps drawn for them (all sizes, not fast-check's default short arrays). */
const scenarioArb = <S>(step: (options: Options) => fc.Arbitrary<S>, maxLength: number): fc.Arbitrary<[Options, S[]]> =>
  optionsArb.chain((options) => fc.tuple(fc.constant(options), fc.array(step(options), { maxLength, size: 'max' })));

const boom = new Error('upstream down');
const ignored = new Error('not an upstream failure');
const isFailure = (err: unknown) => err !== ignored;
const task = (outcome: Outcome): string => {
  if (outcome === 'fail') throw boom;
  if (outcome === 'ignore') throw ignored;
  return 'ok';
};
/** Lets settled task promises reach the breaker before the next command. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('CircuitBreaker properties', () => {
  it('holds its invariants under random calls, concurrency and time', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb(commandArb, 60), async ([options, commands]) => {
        const clock = createFakeClock();
        const breaker = new CircuitBreaker({ ...options, isFailure, clock });
        const maxTrials = options.halfOpenMaxCalls ?? 1;
        const neededSuccesses = options.halfOpenSuccesses ?? maxTrials;

        // What the test has seen, from the events alone.
        // Widened on purpose: the listener below changes it, which narrowing cannot see.
        let state = 'closed' as CircuitState;
        let retryAt = 0;
        let halfOpenPeriod = 0;
        let closedPeriod = 0;
        let trialSuccesses = 0;
        let failuresWhileClosed = 0;
        breaker.onStateChange(({ from, to, reason }) => {
          expect(from).toBe(state);
          if (to === 'open') {
            retryAt = clock.now() + options.openMs;
            // (4) Only a failure of a call made while closed opens a closed circuit.
            if (from === 'closed') expect(failuresWhileClosed).toBeGreaterThan(0);
            if (from === 'half-open') expect(reason).toBe('trial-failure');
          }
          if (to === 'half-open') {
            expect(clock.now()).toBeGreaterThanOrEqual(retryAt);
            halfOpenPeriod++;
            trialSuccesses = 0;
          }
          if (to === 'closed') {
            // (3) Closed again only after exactly halfOpenSuccesses trials of this period succeeded.
            expect(trialSuccesses).toBe(neededSuccesses);
            closedPeriod++;
            failuresWhileClosed = 0;
          }
          state = to;
        });

        type Call = { halfOpenPeriod: number | undefined; closedPeriod: number | undefined; settle: (outcome: Outcome) => void };
        const running = new Set<Call>();
        const pending: Call[] = [];

        const invoke = (finish: (call: Call) => Promise<string>): Promise<string> => {
          const call: Call = {
            halfOpenPeriod: state === 'half-open' ? halfOpenPeriod : undefined,
            closedPeriod: state === 'closed' ? closedPeriod : undefined,
            settle: () => undefined,
          };
          // (2) Nothing reaches the upstream while open or isolated.
          expect(state === 'closed' || state === 'half-open').toBe(true);
          running.add(call);
          if (state === 'half-open') {
            // (1) At most halfOpenMaxCalls trials of this half-open period in flight.
            const trials = [...running].filter((c) => c.halfOpenPeriod === halfOpenPeriod).length;
            expect(trials).toBeLessThanOrEqual(maxTrials);
          }
          return finish(call);
        };
        const outcomeOf = (call: Call, outcome: Outcome): void => {
          running.delete(call);
          if (outcome === 'succeed' && call.halfOpenPeriod === halfOpenPeriod && state === 'half-open') trialSuccesses++;
          if (outcome === 'fail' && call.closedPeriod === closedPeriod && state === 'closed') failuresWhileClosed++;
        };

        const attempt = (promise: Promise<string>): Promise<void> =>
          promise.then(
            () => undefined,
            (err: unknown) => {
              if (err === boom || err === ignored) return;
              expect(isBrokenCircuitError(err)).toBe(true);
              if (!isBrokenCircuitError(err)) return;
              if (state === 'open') {
                expect(clock.now()).toBeLessThan(retryAt);
                expect(err.retryAt).toBe(retryAt);
              } else {
                // Refused while half-open: every trial slot was taken.
                expect(state).toBe('half-open');
                expect(err.retryAt).toBe(clock.now());
                expect([...running].filter((c) => c.halfOpenPeriod === halfOpenPeriod)).toHaveLength(maxTrials);
              }
            },
          );

        for (const command of commands) {
          switch (command.kind) {
            case 'call': {
              await attempt(
                breaker.execute(() =>
                  invoke(async (call) => {
                    outcomeOf(call, command.outcome);
                    return task(command.outcome);
                  }),
                ),
              );
              break;
            }
            case 'start': {
              void attempt(
                breaker.execute(() =>
                  invoke(
                    (call) =>
                      new Promise<string>((resolve, reject) => {
                        call.settle = (outcome) => {
                          outcomeOf(call, outcome);
                          try {
                            resolve(task(outcome));
                          } catch (err) {
                            reject(err);
                          }
                        };
                        pending.push(call);
                      }),
                  ),
                ),
              );
              break;
            }
            case 'finish': {
              if (pending.length === 0) break;
              const [call] = pending.splice(command.index % pending.length, 1);
              call?.settle(command.outcome);
              break;
            }
            case 'advance':
              await clock.advance(command.ms);
              break;
          }
          await settle();
          expect(breaker.state).toBe(state === 'open' && clock.now() >= retryAt ? 'half-open' : state);
        }
        for (const call of pending.splice(0)) call.settle('succeed');
        await settle();
      }),
      { numRuns: 200 },
    );
  });

  it('matches a reference model on sequential calls', async () => {
    const stepArb = (options: Options) => fc.oneof(outcomeArb, advanceArb(options));
    await fc.assert(
      fc.asyncProperty(scenarioArb(stepArb, 80), async ([options, steps]) => {
        const clock = createFakeClock();
        const breaker = new CircuitBreaker({ ...options, isFailure, clock });
        const model = referenceModel(options);
        for (const step of steps) {
          if (typeof step === 'number') {
            await clock.advance(step);
          } else {
            let called = false;
            const expected = model.call(step, clock.now());
            await breaker
              .execute(() => {
                called = true;
                return task(step);
              })
              .catch(() => undefined);
            expect(called).toBe(expected);
          }
          expect(breaker.state).toBe(model.state(clock.now()));
        }
      }),
      { numRuns: 200 },
    );
  });

  it('a closed breaker that only sees successes never opens', async () => {
    await fc.assert(
      fc.asyncProperty(optionsArb, fc.array(fc.oneof(fc.constant('succeed' as const), fc.integer({ min: 0, max: 5000 })), { maxLength: 80 }), async (options, steps) => {
        const clock = createFakeClock();
        const breaker = new CircuitBreaker({ ...options, clock });
        let changes = 0;
        breaker.onStateChange(() => changes++);
        for (const step of steps) {
          if (step === 'succeed') await breaker.execute(() => 'ok');
          else await clock.advance(step);
          expect(breaker.state).toBe('closed');
        }
        expect(changes).toBe(0);
      }),
      { numRuns: 200 },
    );
  });
});

/**
 * The breaker written the slow, obvious way, for one call at a time: every outcome kept in a
 * list, and the window recomputed from it on each failure.
 */
function referenceModel(options: Options) {
  const halfOpenSuccesses = options.halfOpenSuccesses ?? options.halfOpenMaxCalls ?? 1;
  let state: 'closed' | 'open' | 'half-open' = 'closed';
  let consecutive = 0;
  let outcomes: { at: number; failed: boolean }[] = [];
  let retryAt = 0;
  let trialSuccesses = 0;

  const inWindow = (now: number) => {
    const window = options.failureRate?.window;
    if (window === undefined) return [];
    if (window.kind === 'count') return outcomes.slice(-window.size);
    const width = window.ms / (window.buckets ?? 10);
    const oldest = Math.floor(now / width) - (window.buckets ?? 10);
    return outcomes.filter((o) => Math.floor(o.at / width) > oldest);
  };
  const open = (now: number) => {
    state = 'open';
    retryAt = now + options.openMs;
  };

  return {
    state: (now: number) => (state === 'open' && now >= retryAt ? 'half-open' : state),
    /** Records a call at `now`; says whether the function would be called. */
    call(outcome: Outcome, now: number): boolean {
      if (state === 'open') {
        if (now < retryAt) return false;
        state = 'half-open';
        trialSuccesses = 0;
      }
      if (outcome === 'ignore') return true;
      if (state === 'half-open') {
        if (outcome === 'fail') open(now);
        else if (++trialSuccesses >= halfOpenSuccesses) {
          state = 'closed';
          consecutive = 0;
          outcomes = [];
        }
        return true;
      }
      outcomes.push({ at: now, failed: outcome === 'fail' });
      if (outcome === 'succeed') {
        consecutive = 0;
        return true;
      }
      consecutive++;
      const window = inWindow(now);
      const failures = window.filter((o) => o.failed).length;
      const rate = options.failureRate;
      if (options.consecutiveFailures !== undefined && consecutive >= options.consecutiveFailures) open(now);
      else if (rate !== undefined && window.length >= rate.minimumCalls && failures / window.length >= rate.threshold) open(now);
      return true;
    },
  };
}
