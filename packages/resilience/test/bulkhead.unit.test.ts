import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { BulkheadPolicy } from '../src/bulkhead.js';
import { isBulkheadRejectedError } from '../src/errors.js';
import { configError } from './helpers.js';

/** A task that finishes when the test says so. */
function gate<T>() {
  let open!: (value: T) => void;
  let fail!: (err: unknown) => void;
  const promise = new Promise<T>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  return { promise, open, fail };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));


describe('BulkheadPolicy', () => {
  it('runs at most maxConcurrent calls at once', async () => {
    const bulkhead = new BulkheadPolicy({ maxConcurrent: 2, maxQueued: 10 });
    let running = 0;
    let peak = 0;
    const gates = Array.from({ length: 6 }, () => gate<void>());
    const calls = gates.map((g, i) =>
      bulkhead.execute(async () => {
        running++;
        peak = Math.max(peak, running);
        await g.promise;
        running--;
        return i;
      }),
    );
    await tick();
    expect([bulkhead.executing, bulkhead.queued]).toEqual([2, 4]);
    for (const g of gates) {
      g.open();
      await tick();
    }
    expect(await Promise.all(calls)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(peak).toBe(2);
    expect([bulkhead.executing, bulkhead.queued]).toEqual([0, 0]);
  });

  it('starts queued calls first in, first out', async () => {
    const bulkhead = new BulkheadPolicy({ maxConcurrent: 1, maxQueued: 3 });
    const started: string[] = [];
    const first = gate<void>();
    const calls = [
      bulkhead.execute(async () => {
        started.push('a');
        await first.promise;
      }),
      ...['b', 'c', 'd'].map((name) => bulkhead.execute(() => void started.push(name))),
    ];
    await tick();
    expect(started).toEqual(['a']);
    first.open();
    await Promise.all(calls);
    expect(started).toEqual(['a', 'b', 'c', 'd']);
  });

  it('frees the slot when a call fails, and rethrows the failure as it is', async () => {
    const bulkhead = new BulkheadPolicy({ maxConcurrent: 1 });
    const err = new Error('boom');
    await expect(bulkhead.execute(() => Promise.reject(err))).rejects.toBe(err);
    await expect(
      bulkhead.execute(() => {
        throw err;
      }),
    ).rejects.toBe(err);
    expect(bulkhead.executing).toBe(0);
    await expect(bulkhead.execute(() => 'next')).resolves.toBe('next');
  });

  it('refuses with code bulkhead_full when slots and queue are taken, and reports it', async () => {
    const bulkhead = new BulkheadPolicy({ maxConcurrent: 1, maxQueued: 1 });
    const rejects: { executing: number; queued: number }[] = [];
    bulkhead.onReject((e) => rejects.push(e));
    const g = gate<void>();
    const running = bulkhead.execute(() => g.promise);
    const queued = bulkhead.execute(() => 'queued');
    let called = false;
    const refused = await bulkhead
      .execute(() => {
        called = true;
      })
      .catch((err: unknown) => err);
    expect(isBulkheadRejectedError(refused)).toBe(true);
    expect(refused).toMatchObject({ code: 'bulkhead_full', maxConcurrent: 1, maxQueued: 1 });
    expect(called).toBe(false);
    expect(rejects).toEqual([{ executing: 1, queued: 1 }]);
    g.open();
    await running;
    await expect(queued).resolves.toBe('queued');
  });

  it('with no queue (the default), refuses as soon as every slot is taken', async () => {
    const bulkhead = new BulkheadPolicy({ maxConcurrent: 1 });
    const g = gate<void>();
    const running = bulkhead.execute(() => g.promise);
    await expect(bulkhead.execute(() => 'second')).rejects.toMatchObject({ code: 'bulkhead_full' });
    g.open();
    await running;
  });

  it('takes a call whose caller aborts out of the queue, rejecting with the reason, and keeps the order of the rest', async () => {
    const bulkhead = new BulkheadPolicy({ maxConcurrent: 1, maxQueued: 3 });
    const g = gate<void>();
    const started: string[] = [];
    const running = bulkhead.execute(() => g.promise);
    const caller = new AbortController();
    const b = bulkhead.execute(() => void started.push('b'));
    const aborted = bulkhead.execute(() => void started.push('aborted'), { signal: caller.signal });
    const d = bulkhead.execute(() => void started.push('d'));
    expect(bulkhead.queued).toBe(3);

    caller.abort('caller left');
    await expect(aborted).rejects.toBe('caller left');
    expect(bulkhead.queued).toBe(2);
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);

    g.open();
    await Promise.all([running, b, d]);
    expect(started).toEqual(['b', 'd']);
  });

  it('removes its listener from the signal of a queued call that gets a slot', async () => {
    const bulkhead = new BulkheadPolicy({ maxConcurrent: 1, maxQueued: 1 });
    const caller = new AbortController();
    for (let i = 0; i < 100; i++) {
      const g = gate<void>();
      const running = bulkhead.execute(() => g.promise, { signal: caller.signal });
      const queued = bulkhead.execute(() => i, { signal: caller.signal });
      g.open();
      await running;
      await expect(queued).resolves.toBe(i);
    }
    expect(getEventListeners(caller.signal, 'abort')).toHaveLength(0);
  });

  it('does not start a call whose caller has already aborted', async () => {
    const bulkhead = new BulkheadPolicy({ maxConcurrent: 1 });
    const caller = new AbortController();
    caller.abort('gone');
    await expect(bulkhead.execute(() => 'no', { signal: caller.signal })).rejects.toBe('gone');
    expect(bulkhead.executing).toBe(0);
  });

  it('hands a freed slot to the queue before a newcomer can take it', async () => {
    const bulkhead = new BulkheadPolicy({ maxConcurrent: 1, maxQueued: 1 });
    const g = gate<void>();
    let running = 0;
    let peak = 0;
    const track = async () => {
      running++;
      peak = Math.max(peak, running);
      await tick();
      running--;
    };
    const first = bulkhead.execute(() => g.promise);
    const queued = bulkhead.execute(track);
    // Runs right after the bulkhead sees the first call finish, before the queued call resumes.
    const newcomer = g.promise.then(() => bulkhead.execute(track));
    g.open();
    await Promise.all([first, queued, newcomer]);
    expect(peak).toBe(1);
  });

  it('names the option it refuses', () => {
    expect(configError(() => new BulkheadPolicy({ maxConcurrent: 0 })).option).toBe('maxConcurrent');
    expect(configError(() => new BulkheadPolicy({ maxConcurrent: 2.5 })).option).toBe('maxConcurrent');
    expect(configError(() => new BulkheadPolicy({ maxConcurrent: 1, maxQueued: -1 })).option).toBe('maxQueued');
    expect(configError(() => new BulkheadPolicy({ maxConcurrent: 1, maxQueued: Infinity })).option).toBe('maxQueued');
  });
});
