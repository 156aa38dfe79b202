/**
 * The Lua scripts of the Redis Streams transport. Every state change that touches more than
 * one key is one script, so it is atomic and one round trip. Keys of a topic share the hash
 * tag `{topic}` (see keys.ts), so a script only ever touches one cluster slot.
 *
 * Head state: `heads:<group>` holds, per partition, the JSON of the group's current head in
 * that partition (at most one message per (group, partition) is out, so this is all the
 * per-message state there is): `{ id, a: attempts, s: 'i' (leased) | 'r' (ready), v:
 * visible-at ms (lease end, or backoff end), t: lease token, vis: the lease's timeout, e:
 * errors [{ at, attempt, error }] }`. The stream's own PEL holds that entry too (always under
 * the one consumer name `bus`), which is what XINFO/XPENDING show and what retention reads.
 *
 * Time is the server's (TIME), one clock for every process; scripts are effect-replicated
 * (Redis >= 7), so that is allowed.
 */

/** Helpers shared by the scripts below (prepended to each). */
const LIB = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function to_map(flat)
  local m = {}
  for i = 1, #flat, 2 do m[flat[i]] = flat[i + 1] end
  return m
end

local function id_parts(id)
  local dash = string.find(id, '-', 1, true)
  return string.sub(id, 1, dash - 1), tonumber(string.sub(id, dash + 1))
end

local function id_less(a, b)
  local am, as = id_parts(a)
  local bm, bs = id_parts(b)
  if am ~= bm then return tonumber(am) < tonumber(bm) end
  return as < bs
end

local function id_next(id)
  local ms, seq = id_parts(id)
  return ms .. '-' .. string.format('%d', seq + 1)
end

-- Interest retention: drops the entries every group of the stream has settled. A group's
-- low-water mark is its pending entry (at most one) or the entry after its last delivered.
-- A stream with no group keeps everything (for the first group starting from 'earliest').
local function trim(stream)
  local low = nil
  for _, raw in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
    local g = to_map(raw)
    local mark
    if tonumber(g['pending']) > 0 then
      mark = redis.call('XPENDING', stream, g['name'], '-', '+', 1)[1][1]
    else
      mark = id_next(g['last-delivered-id'])
    end
    if low == nil or id_less(mark, low) then low = mark end
  end
  if low ~= nil then redis.call('XTRIM', stream, 'MINID', low) end
end

-- The group is done with entry id: ack, count down its pending, trim, tell waiting publishers.
local function settle(meta, stream, group, id, topic, channel)
  redis.call('XACK', stream, group, id)
  redis.call('HINCRBY', meta, 'pending:' .. group, -1)
  trim(stream)
  if redis.call('HGET', meta, 'onFull') == 'wait' then redis.call('PUBLISH', channel, 's:' .. topic) end
end

-- Moves the group's head of partition p to the dead letters, with its errors; returns the entry id.
local function bury(meta, heads, dlq, stream, group, p, st, now, topic, channel)
  local entry = redis.call('XRANGE', stream, st.id, st.id)[1]
  local dead = false
  if entry then
    local f = to_map(entry[2])
    local args = { 'XADD', dlq, '*', 'group', group, 'partition', p, 'id', f['id'], 'headers', f['h'], 'body', f['b'],
      'attempts', st.a, 'errors', cjson.encode(st.e), 'deadAt', now }
    if f['k'] then
      args[#args + 1] = 'key'
      args[#args + 1] = f['k']
    end
    dead = redis.call(unpack(args))
    redis.call('HINCRBY', meta, 'dead:' .. group, 1)
  end
  redis.call('HDEL', heads, p)
  settle(meta, stream, group, st.id, topic, channel)
  return dead
end

local function field(flat, name)
  for i = 1, #flat, 2 do
    if flat[i] == name then return flat[i + 1] end
  end
  return nil
end
`;

/**
 * KEYS: meta. ARGV: partitions, maxMessageBytes, maxUnacked ('' = unbounded), onFull.
 * Returns 1 when declared now, 0 when it existed (its first settings stay).
 */
export const DECLARE_TOPIC_LUA = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'partitions', ARGV[1], 'maxMessageBytes', ARGV[2], 'onFull', ARGV[4])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'maxUnacked', ARGV[3]) end
return 1
`;

/**
 * KEYS: meta, groups, stream of each partition. ARGV: group, 'earliest' | 'latest', topic, channel.
 * Creates the stream group on every partition; an 'earliest' group owes every entry held.
 * Returns -1 for an unknown topic, 0 when the group existed, 1 when created.
 */
export const DECLARE_GROUP_LUA = `${LIB}
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local group = ARGV[1]
if redis.call('SADD', KEYS[2], group) == 0 then return 0 end
local backlog = 0
for i = 3, #KEYS do
  -- BUSYGROUP (a group left behind by a former declaration) keeps that group's position.
  redis.pcall('XGROUP', 'CREATE', KEYS[i], group, ARGV[2] == 'latest' and '$' or '0', 'MKSTREAM')
  if ARGV[2] ~= 'latest' then backlog = backlog + redis.call('XLEN', KEYS[i]) end
end
redis.call('HSET', KEYS[1], 'pending:' .. group, backlog)
redis.call('PUBLISH', ARGV[4], 'p:' .. ARGV[3])
return 1
`;

/**
 * KEYS: meta, groups, stream of each partition. ARGV: topic, channel, then six per message:
 * partition, id, has key ('1'/'0'), key, headers (JSON), body.
 * All or nothing: returns {'ok'}, {'unknown'}, or {'full', held, maxUnacked} when the batch
 * does not fit (held = entries some group has not settled, across partitions).
 */
export const PUBLISH_LUA = `
if redis.call('EXISTS', KEYS[1]) == 0 then return { 'unknown' } end
local count = (#ARGV - 2) / 6
local max = redis.call('HGET', KEYS[1], 'maxUnacked')
if max then
  local held = 0
  for i = 3, #KEYS do held = held + redis.call('XLEN', KEYS[i]) end
  if held + count > tonumber(max) then return { 'full', held, tonumber(max) } end
end
for i = 3, #ARGV, 6 do
  local stream = KEYS[3 + tonumber(ARGV[i])]
  if ARGV[i + 2] == '1' then
    redis.call('XADD', stream, '*', 'id', ARGV[i + 1], 'k', ARGV[i + 3], 'h', ARGV[i + 4], 'b', ARGV[i + 5])
  else
    redis.call('XADD', stream, '*', 'id', ARGV[i + 1], 'h', ARGV[i + 4], 'b', ARGV[i + 5])
  end
end
for _, group in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  redis.call('HINCRBY', KEYS[1], 'pending:' .. group, count)
end
redis.call('PUBLISH', ARGV[2], 'p:' .. ARGV[1])
return { 'ok' }
`;

/**
 * KEYS: meta, heads, dlq, stream of each partition. ARGV: group, topic, channel, free slots,
 * visibilityTimeoutMs, maxAttempts, token base, first partition to look at.
 *
 * For each partition (round robin from the given one) until the slots are filled: the
 * group's head, if it is ready and past its backoff, or leased with the lease run out (the
 * holder is presumed dead: a failed attempt; dead-lettered if it was the last); otherwise,
 * with no head, the next entry (XREADGROUP >), stepping over replays meant for another
 * group. Returns {now, nextAt (-1: none), {{partition, attempts, token, fields}...}}: nextAt
 * is the earliest time a blocked head becomes claimable, for the caller's next wake-up.
 */
export const CLAIM_LUA = `${LIB}
local meta, heads, dlq = KEYS[1], KEYS[2], KEYS[3]
local group, topic, channel = ARGV[1], ARGV[2], ARGV[3]
local free, vis, max_attempts = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local token_base, start = ARGV[7], tonumber(ARGV[8])
local n = #KEYS - 3
local now = now_ms()
local out = {}
local next_at = -1

local function lease(p, st, fields)
  st.a = st.a + 1
  st.s = 'i'
  st.v = now + vis
  st.vis = vis
  st.t = token_base .. ':' .. (#out + 1)
  redis.call('HSET', heads, p, cjson.encode(st))
  out[#out + 1] = { p, st.a, st.t, fields }
end

for i = 0, n - 1 do
  if #out >= free then break end
  local p = (start + i) % n
  local stream = KEYS[4 + p]
  for _ = 1, 1000 do
    local raw = redis.call('HGET', heads, p)
    if raw then
      local st = cjson.decode(raw)
      if st.v > now then
        if next_at < 0 or st.v < next_at then next_at = st.v end
        break
      end
      if type(st.e) ~= 'table' then st.e = {} end
      local ready = true
      if st.s == 'i' then
        st.e[#st.e + 1] = { at = now, attempt = st.a, error = 'visibility timeout of ' .. string.format('%d', st.vis) .. ' ms passed' }
        if st.a >= max_attempts then
          bury(meta, heads, dlq, stream, group, p, st, now, topic, channel)
          ready = false
        end
      end
      if ready then
        local entry = redis.call('XRANGE', stream, st.id, st.id)[1]
        if entry then
          lease(p, st, entry[2])
          break
        end
        -- The entry is gone (deleted by hand): forget the head and go on.
        redis.call('HDEL', heads, p)
        settle(meta, stream, group, st.id, topic, channel)
      end
    else
      local reply = redis.call('XREADGROUP', 'GROUP', group, 'bus', 'COUNT', 1, 'STREAMS', stream, '>')
      if not reply then break end
      local entry = reply[1][2][1]
      local only = field(entry[2], 'o')
      if only and only ~= group then
        settle(meta, stream, group, entry[1], topic, channel)
      else
        lease(p, { id = entry[1], a = 0, e = {} }, entry[2])
        break
      end
    end
  end
end
return { now, next_at, out }
`;

/**
 * KEYS: meta, heads, stream of the partition. ARGV: group, topic, channel, partition, token.
 * Acks the head if the token still holds its lease; returns 1, or 0 for a stale token.
 */
export const ACK_LUA = `${LIB}
local raw = redis.call('HGET', KEYS[2], ARGV[4])
if not raw then return 0 end
local st = cjson.decode(raw)
if st.s ~= 'i' or st.t ~= ARGV[5] then return 0 end
redis.call('HDEL', KEYS[2], ARGV[4])
settle(KEYS[1], KEYS[3], ARGV[1], st.id, ARGV[2], ARGV[3])
return 1
`;

/**
 * KEYS: meta, heads, dlq, stream of the partition. ARGV: group, topic, channel, partition,
 * token, error text, 'retry' | 'dead', delay ms, maxAttempts.
 * Records a failed attempt of the head (nack, expired lease, explicit dead letter). 'retry'
 * makes it claimable again after the delay, unless that was the last attempt; 'dead' (or
 * the last attempt) moves it to the dead letters. Returns {'retry', delay}, {'dead', id},
 * or {'stale'} when the token no longer holds the lease.
 */
export const FAIL_LUA = `${LIB}
local meta, heads, dlq, stream = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local group, topic, channel, p = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local raw = redis.call('HGET', heads, p)
if not raw then return { 'stale' } end
local st = cjson.decode(raw)
if st.s ~= 'i' or st.t ~= ARGV[5] then return { 'stale' } end
if type(st.e) ~= 'table' then st.e = {} end
local now = now_ms()
st.e[#st.e + 1] = { at = now, attempt = st.a, error = ARGV[6] }
if ARGV[7] == 'dead' or st.a >= tonumber(ARGV[9]) then
  return { 'dead', bury(meta, heads, dlq, stream, group, p, st, now, topic, channel) }
end
local delay = tonumber(ARGV[8])
st.s = 'r'
st.v = now + delay
st.t = nil
redis.call('HSET', heads, p, cjson.encode(st))
redis.call('PUBLISH', channel, 'p:' .. topic)
return { 'retry', delay }
`;

/**
 * KEYS: heads. ARGV: topic, channel, then pairs of partition and token.
 * Gives leases back unsettled (a stopping consumer): claimable at once, the attempt not counted.
 */
export const RELEASE_LUA = `${LIB}
local now = now_ms()
for i = 3, #ARGV, 2 do
  local raw = redis.call('HGET', KEYS[1], ARGV[i])
  if raw then
    local st = cjson.decode(raw)
    if st.s == 'i' and st.t == ARGV[i + 1] then
      st.s = 'r'
      st.v = now
      st.t = nil
      st.a = math.max(st.a - 1, 0)
      redis.call('HSET', KEYS[1], ARGV[i], cjson.encode(st))
    end
  end
end
redis.call('PUBLISH', ARGV[2], 'p:' .. ARGV[1])
return 1
`;

/**
 * KEYS: meta, heads. ARGV: group. Returns false for an unknown topic, else
 * {pending, inFlight (live leases), deadLetters}.
 */
export const STATS_LUA = `${LIB}
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local now = now_ms()
local in_flight = 0
local all = redis.call('HGETALL', KEYS[2])
for i = 2, #all, 2 do
  local st = cjson.decode(all[i])
  if st.s == 'i' and st.v > now then in_flight = in_flight + 1 end
end
local pending = tonumber(redis.call('HGET', KEYS[1], 'pending:' .. ARGV[1]) or '0')
local dead = tonumber(redis.call('HGET', KEYS[1], 'dead:' .. ARGV[1]) or '0')
return { math.max(pending, 0), in_flight, dead }
`;

/**
 * KEYS: meta, groups, dlq, stream of each partition. ARGV: dead letter entry id, topic, channel.
 * Appends the message again to the tail of its partition, marked for its group alone (field
 * `o`); other groups already caught up step over it now (XGROUP SETID), the rest skip it
 * when they reach it. Removes the dead letter. Returns 1, or 0 (no such entry, group gone).
 */
export const REPLAY_LUA = `${LIB}
local meta, groups, dlq = KEYS[1], KEYS[2], KEYS[3]
local entry = redis.call('XRANGE', dlq, ARGV[1], ARGV[1])[1]
if not entry then return 0 end
local f = to_map(entry[2])
local group = f['group']
if redis.call('SISMEMBER', groups, group) == 0 then return 0 end
local stream = KEYS[4 + tonumber(f['partition'])]
if not stream then return 0 end
local top = to_map(redis.call('XINFO', 'STREAM', stream))['last-generated-id']
local args = { 'XADD', stream, '*', 'id', f['id'], 'h', f['headers'], 'b', f['body'], 'o', group }
if f['key'] then
  args[#args + 1] = 'k'
  args[#args + 1] = f['key']
end
local id = redis.call(unpack(args))
for _, raw in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
  local g = to_map(raw)
  if g['name'] == group then
    redis.call('HINCRBY', meta, 'pending:' .. group, 1)
  elseif g['last-delivered-id'] == top then
    redis.call('XGROUP', 'SETID', stream, g['name'], id)
  else
    redis.call('HINCRBY', meta, 'pending:' .. g['name'], 1)
  end
end
redis.call('XDEL', dlq, ARGV[1])
redis.call('HINCRBY', meta, 'dead:' .. group, -1)
redis.call('PUBLISH', ARGV[3], 'p:' .. ARGV[2])
return 1
`;

/**
 * KEYS: meta, dlq. ARGV: entry id ('' = all entries), group filter flag ('1'/'0'), group.
 * Removes dead letters and counts them down per group. Returns how many went.
 */
export const PURGE_LUA = `${LIB}
local meta, dlq = KEYS[1], KEYS[2]
local function matches(flat)
  return ARGV[2] ~= '1' or field(flat, 'group') == ARGV[3]
end
local function drop(entry)
  redis.call('XDEL', dlq, entry[1])
  redis.call('HINCRBY', meta, 'dead:' .. field(entry[2], 'group'), -1)
end
if ARGV[1] ~= '' then
  local entry = redis.call('XRANGE', dlq, ARGV[1], ARGV[1])[1]
  if not entry or not matches(entry[2]) then return 0 end
  drop(entry)
  return 1
end
local count = 0
local from = '-'
while true do
  local batch = redis.call('XRANGE', dlq, from, '+', 'COUNT', 500)
  if #batch == 0 then break end
  for _, entry in ipairs(batch) do
    if matches(entry[2]) then
      drop(entry)
      count = count + 1
    end
  end
  from = '(' .. batch[#batch][1]
end
return count
`;
