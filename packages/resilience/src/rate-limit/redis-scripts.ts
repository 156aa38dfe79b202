// The Lua run by the Redis store. Each script is one atomic check-and-take in one round trip,
// and mirrors the pure step function named in its header operation for operation, so the
// memory and Redis stores answer alike. Redis >= 5 (TIME before a write needs effects
// replication, the default since 5).

/** Reads the caller's clock from ARGV[4], or the server's TIME when ARGV[4] is ''. */
const NOW = `
local now = tonumber(ARGV[4])
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end`;

/**
 * Token bucket, as `tokenBucketStep` in token-bucket.ts.
 *
 * KEYS[1]  the bucket, a hash: `tokens` (fractional count) as of `ts` (ms since the epoch)
 * ARGV[1]  capacity, integer >= 1
 * ARGV[2]  refill rate, tokens per second, > 0
 * ARGV[3]  cost, integer >= 1
 * ARGV[4]  now in ms since the epoch, or '' to use the server's TIME
 *
 * Returns  {allowed (1 | 0), remaining, resetAt (ms since the epoch), retryAfterMs (-1: never,
 *          the cost exceeds the capacity)}, integers all.
 * Writes   only when allowed: HSET tokens, ts and PEXPIRE at the moment the bucket is full
 *          again, when having no state means the same as having it.
 */
export const TOKEN_BUCKET_LUA = `${NOW}
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local stokens = tonumber(state[1])
local sts = tonumber(state[2])
if stokens == nil or sts == nil then
  stokens = capacity
  sts = now
end
local tokens, ts = stokens, sts
-- a clock behind the one that wrote the state refills nothing, and its times count from ts
if now > ts then
  tokens = math.min(capacity, tokens + ((now - ts) * rate) / 1000)
  ts = now
end
if cost <= capacity and tokens >= cost then
  tokens = tokens - cost
  local ttl = math.max(1, ts + math.ceil(((capacity - tokens) * 1000) / rate) - now)
  -- numbers given to redis.call are written in full precision (tostring would keep 14 digits)
  redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', ts)
  redis.call('PEXPIRE', KEYS[1], ttl)
  return {1, math.floor(tokens), now + ttl, 0}
end
local retry = -1
if cost <= capacity then
  -- the first whole ms after sts at which the refill above reaches cost, found with that same
  -- expression so float rounding cannot make the advice 1 ms early or late
  -- (the estimate is off by at most one either way: the limiter keeps a full refill under 2^50 ms)
  local d = math.ceil(((cost - stokens) * 1000) / rate)
  for _ = 1, 2 do
    if stokens + (d * rate) / 1000 < cost then d = d + 1 end
  end
  for _ = 1, 2 do
    if d > 0 and stokens + ((d - 1) * rate) / 1000 >= cost then d = d - 1 end
  end
  retry = sts + d - now
end
return {0, math.floor(tokens), ts + math.ceil(((capacity - tokens) * 1000) / rate), retry}
`;

/**
 * Sliding-window counter, as `slidingWindowStep` in sliding-window.ts.
 *
 * KEYS[1]  the counters, a hash: `w` (index of the current fixed window, floor(now / windowMs)),
 *          `cur` (its count) and `prev` (the count of window w - 1)
 * ARGV[1]  limit, integer >= 1
 * ARGV[2]  windowMs, integer >= 1
 * ARGV[3]  cost, integer >= 1
 * ARGV[4]  now in ms since the epoch, or '' to use the server's TIME
 *
 * Returns  {allowed (1 | 0), remaining, resetAt (end of the current fixed window, ms since
 *          the epoch), retryAfterMs (-1: never, the cost exceeds the limit)}, integers all.
 * Writes   only when allowed: HSET w, cur, prev and PEXPIRE at the end of window w + 1, after
 *          which `cur` no longer counts.
 */
export const SLIDING_WINDOW_LUA = `${NOW}
local limit = tonumber(ARGV[1])
local windowMs = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local at = now
local w = math.floor(now / windowMs)
local cur, prev = 0, 0
local state = redis.call('HMGET', KEYS[1], 'w', 'cur', 'prev')
local sw = tonumber(state[1])
if sw ~= nil then
  if sw > w then
    -- a clock behind the one that wrote the state counts from the start of that state's window
    -- (its waits are then lengthened by how far behind it is)
    w = sw
    now = w * windowMs
    cur = tonumber(state[2]) or 0
    prev = tonumber(state[3]) or 0
  elseif sw == w then
    cur = tonumber(state[2]) or 0
    prev = tonumber(state[3]) or 0
  elseif sw == w - 1 then
    prev = tonumber(state[2]) or 0
  end
end
local start = w * windowMs
local elapsed = now - start
local resetAt = start + windowMs
local budget = limit * windowMs
-- the weighted count times windowMs, in integers: prev * (windowMs - elapsed) / windowMs + cur
local used = prev * (windowMs - elapsed) + cur * windowMs
if cost <= limit and used + cost * windowMs <= budget then
  redis.call('HSET', KEYS[1], 'w', w, 'cur', cur + cost, 'prev', prev)
  redis.call('PEXPIRE', KEYS[1], start + 2 * windowMs - at)
  return {1, math.max(0, math.floor((budget - used - cost * windowMs) / windowMs)), resetAt, 0}
end
local retry = -1
if cost <= limit then
  local room = budget - cost * windowMs
  if cur * windowMs <= room and prev > 0 then
    retry = windowMs - math.floor((room - cur * windowMs) / prev) - elapsed
  elseif cur == 0 then
    retry = windowMs - elapsed
  else
    retry = windowMs - elapsed + math.max(0, windowMs - math.floor(room / cur))
  end
  retry = retry + now - at
end
return {0, math.max(0, math.floor((budget - used) / windowMs)), resetAt, retry}
`;
