import type { RateLimitResult, SlidingWindowParams } from './types.js';

/** A key's counts: `cur` in fixed window `w` (= floor(now / windowMs)), `prev` in window w - 1. */
export interface SlidingWindowState {
  readonly w: number;
  readonly cur: number;
  readonly prev: number;
}

export interface SlidingWindowStep {
  readonly result: RateLimitResult;
  /** The state to keep, or undefined when it did not change (a refusal changes nothing). */
  readonly next: SlidingWindowState | undefined;
  /** How long the kept state matters: until window w + 1 ends and `cur` no longer counts. */
  readonly ttlMs: number;
}

/**
 * One sliding-window-counter decision, as a pure function. The weighted count is
 * `prev * (windowMs - elapsed) / windowMs + cur`; every comparison is multiplied out by
 * `windowMs` so it stays in integers and cannot round differently here and in Lua. The Redis
 * script `SLIDING_WINDOW_LUA` does the same arithmetic, so both stores give the same answers.
 */
export function slidingWindowStep(state: SlidingWindowState | undefined, params: SlidingWindowParams, cost: number, at: number): SlidingWindowStep {
  const { limit, windowMs } = params;
  let now = at;
  let w = Math.floor(now / windowMs);
  let cur = 0;
  let prev = 0;
  if (state !== undefined) {
    if (state.w > w) {
      // A clock behind the one that wrote the state counts from the start of that state's window
      // (its waits are then lengthened by how far behind it is).
      w = state.w;
      now = w * windowMs;
      cur = state.cur;
      prev = state.prev;
    } else if (state.w === w) {
      cur = state.cur;
      prev = state.prev;
    } else if (state.w === w - 1) {
      prev = state.cur;
    }
  }
  const start = w * windowMs;
  const elapsed = now - start;
  const resetAt = start + windowMs;
  const budget = limit * windowMs;
  const used = prev * (windowMs - elapsed) + cur * windowMs;

  if (cost <= limit && used + cost * windowMs <= budget) {
    const next = { w, cur: cur + cost, prev };
    const result = { allowed: true, limit, remaining: remainingAfter(budget, used + cost * windowMs, windowMs), resetAt, retryAfterMs: 0 };
    return { result, next, ttlMs: start + 2 * windowMs - at };
  }
  let retryAfterMs = Number.POSITIVE_INFINITY;
  if (cost <= limit) {
    const room = budget - cost * windowMs; // what the weighted count must fall to
    if (cur * windowMs <= room && prev > 0) {
      // Later in this window: prev * (windowMs - e) <= room - cur * windowMs.
      retryAfterMs = windowMs - Math.floor((room - cur * windowMs) / prev) - elapsed;
    } else {
      // In the next window, where cur becomes prev: cur * (windowMs - e) <= room.
      retryAfterMs = windowMs - elapsed + (cur === 0 ? 0 : Math.max(0, windowMs - Math.floor(room / cur)));
    }
  }
  retryAfterMs += now - at;
  return { result: { allowed: false, limit, remaining: remainingAfter(budget, used, windowMs), resetAt, retryAfterMs }, next: undefined, ttlMs: 0 };
}

// Module-level rather than a closure in the step: this runs on every check.
function remainingAfter(budget: number, used: number, windowMs: number): number {
  return Math.max(0, Math.floor((budget - used) / windowMs));
}
