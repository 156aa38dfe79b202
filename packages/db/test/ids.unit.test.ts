import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createIdGenerator, DEFAULT_ID_EPOCH_MS, idNode, idTimestamp, isDbError, parseId } from '../src/index.js';

describe('createIdGenerator', () => {
  it('encodes the time and node id', () => {
    const at = Date.UTC(2025, 5, 1, 12);
    const id = createIdGenerator({ nodeId: 7, now: () => at }).next();
    expect(idTimestamp(id).getTime()).toBe(at);
    expect(idNode(id)).toBe(7);
  });

  it('sorts by creation time across nodes', () => {
    let now = DEFAULT_ID_EPOCH_MS + 1_000;
    const a = createIdGenerator({ nodeId: 1023, now: () => now });
    const b = createIdGenerator({ nodeId: 0, now: () => now });
    const first = a.next();
    now += 1;
    expect(b.next()).toBeGreaterThan(first);
  });

  it('stays positive in a signed 64-bit column at the end of its range', () => {
    const id = createIdGenerator({ nodeId: 1023, now: () => DEFAULT_ID_EPOCH_MS + 2 ** 41 - 1 }).next();
    expect(id).toBeGreaterThan(0n);
    expect(id).toBeLessThan(2n ** 63n);
  });

  it('moves to the next millisecond when 4096 ids are taken in one', () => {
    const start = DEFAULT_ID_EPOCH_MS + 50;
    let reads = 0;
    // The clock ticks only after many reads, as a real one does while the generator waits.
    const ids = createIdGenerator({ nodeId: 1, now: () => start + Math.floor(reads++ / 5_000) });
    const made = Array.from({ length: 4_097 }, () => ids.next());
    expect(new Set(made).size).toBe(made.length);
    expect(idTimestamp(made[4_096] ?? 0n).getTime()).toBeGreaterThan(start);
  });

  it('never repeats on a frozen clock', () => {
    const ids = createIdGenerator({ nodeId: 3, now: () => DEFAULT_ID_EPOCH_MS + 10 });
    let previous = -1n;
    for (let i = 0; i < 10_000; i++) {
      const id = ids.next();
      expect(id > previous).toBe(true);
      previous = id;
    }
  });

  it('is strictly increasing and unique under random clock moves, backwards included', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1023 }),
        fc.array(fc.record({ move: fc.integer({ min: -5_000, max: 5_000 }), calls: fc.integer({ min: 1, max: 300 }) }), {
          minLength: 1,
          maxLength: 60,
        }),
        (nodeId, steps) => {
          let now = DEFAULT_ID_EPOCH_MS + 10_000_000;
          const ids = createIdGenerator({ nodeId, now: () => now });
          let previous = -1n;
          for (const step of steps) {
            now += step.move;
            for (let i = 0; i < step.calls; i++) {
              const id = ids.next();
              if (id <= previous || idNode(id) !== nodeId) return false;
              previous = id;
            }
          }
          return true;
        },
      ),
      { numRuns: 200 },
    );
  });

  it('rejects a node id outside 0..1023', () => {
    for (const nodeId of [-1, 1024, 1.5]) {
      expect(() => createIdGenerator({ nodeId })).toThrow(expect.objectContaining({ code: 'DB_ID_INVALID_NODE' }));
    }
  });

  it('refuses to make ids before its epoch', () => {
    const ids = createIdGenerator({ nodeId: 1, now: () => DEFAULT_ID_EPOCH_MS - 1 });
    expect(() => ids.next()).toThrow(expect.objectContaining({ code: 'DB_ID_CLOCK_BEFORE_EPOCH' }));
  });

  it('refuses once the 41-bit timestamp overflows', () => {
    const ids = createIdGenerator({ nodeId: 1, now: () => DEFAULT_ID_EPOCH_MS + 2 ** 41 });
    expect(() => ids.next()).toThrow(expect.objectContaining({ code: 'DB_ID_EXHAUSTED' }));
  });
});

describe('parseId', () => {
  it('round-trips the decimal form used in JSON', () => {
    const id = createIdGenerator({ nodeId: 9 }).next();
    expect(parseId(JSON.parse(JSON.stringify({ id: id.toString() })).id)).toBe(id);
  });

  it('rejects anything that is not a 63-bit decimal', () => {
    for (const value of ['', '-1', '01', '1e3', ' 1', '9223372036854775808', 'abc']) {
      let caught: unknown;
      try {
        parseId(value);
      } catch (err) {
        caught = err;
      }
      expect(isDbError(caught, 'DB_INVALID_ID')).toBe(true);
    }
    expect(parseId('9223372036854775807')).toBe(2n ** 63n - 1n);
  });
});
