"""The Lua scripts of cluster mode: each is one atomic step of a router's lease.

Keys are those of ``gateway.core.cluster.RouterKeys``; times are Redis's own (``TIME``, in
milliseconds), so the replicas' clocks never have to agree for demand to expire or a lease to be
taken. ``gateway.cluster_link`` runs them with ``EVALSHA`` (loaded once, loaded again after a
``NOSCRIPT``). Each script's comment states its keys, arguments and reply.

Demand entries are ``gateway.core.cluster.demand_member``s (a replica id, with ``:<source>`` for
a source other than interfaces); a router's streams are one per source, passed in the order of
``gateway.core.sources.SOURCES`` after the lease, demand and meta keys, and each entry names its
stream by index and its meta fields by suffix (``""`` for interfaces: ``seq`` and ``status``;
``":queues"``: ``seq:queues``, ``status:queues`` and ``status_at:queues``). A status entry's
``seq`` is its position among the frames (``gateway.core.cluster.StatusMark``); ``status_at``
keeps it with the entry's id, so the current status in ``meta`` is ordered as the stream is.
"""

from __future__ import annotations

from typing import Final

__all__ = ["ACQUIRE", "RELEASE", "TICK"]

_NOW: Final = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""

ACQUIRE: Final = (
    """
-- A replica with local demand: announce it, and take the lease if nobody holds it, or if it is
-- held under an earlier token of this replica's (``<replica>#<n>``: an acquire that timed out
-- at the replica but ran in Redis later, after a stall or a partition). That lease is this
-- replica's, which does not know it: it takes it under the new token, rather than nobody
-- polling the router until it runs out.
-- KEYS: lease, demand, meta
-- ARGV: token, lease ttl (ms), demand ttl (ms), then this replica's demand entries (one per
--       source it wants)
-- Reply: {1 if the lease was taken else 0, Redis time (ms), the meta hash as a flat list of
--         field, value, ..., the demand entries of every replica}
"""
    + _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
for i = 4, #ARGV do
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[i])
end
local taken = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0
if taken == 0 then
  local mine = string.match(ARGV[1], '^(.*#)')
  local held = redis.call('GET', KEYS[1])
  if mine and held and string.sub(held, 1, #mine) == mine then
    redis.call('SET', KEYS[1], ARGV[1], 'XX', 'PX', ARGV[2])
    taken = 1
  end
end
return {taken, now, redis.call('HGETALL', KEYS[3]), redis.call('ZRANGE', KEYS[2], 0, -1)}
"""
)

TICK: Final = (
    """
-- The holder's tick: renew the lease, append what it publishes, keep demand fresh. Nothing is
-- appended and nothing renewed unless the lease is still this token's.
-- KEYS: lease, demand, meta, then the router's streams (one per source)
-- ARGV: token, lease ttl (ms), demand ttl (ms), stream length, n: how many demand entries
--       follow to add, m: how many to remove, the n entries, the m entries, then per stream
--       entry: stream index, meta suffix, kind ('traffic'|'status'), data (JSON), publish time,
--       seq (a status's: its position, kept with the id XADD gave it as 'status_at'; empty
--       from a replica that does not say)
-- Reply: -1 when the lease is lost, else the demand entries of every replica
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
"""
    + _NOW
    + """
local adds = tonumber(ARGV[5])
local removes = tonumber(ARGV[6])
local first = 7 + adds + removes
for i = first, #ARGV, 6 do
  local stream = KEYS[3 + tonumber(ARGV[i])]
  local suffix = ARGV[i + 1]
  local kind = ARGV[i + 2]
  if kind == 'traffic' then
    redis.call('XADD', stream, 'MAXLEN', '~', ARGV[4], '*',
      'type', kind, 'data', ARGV[i + 3], 't', ARGV[i + 4], 'seq', ARGV[i + 5])
    redis.call('HSET', KEYS[3], 'seq' .. suffix, ARGV[i + 5])
  elseif ARGV[i + 5] ~= '' then
    local id = redis.call('XADD', stream, 'MAXLEN', '~', ARGV[4], '*',
      'type', kind, 'data', ARGV[i + 3], 't', ARGV[i + 4], 'seq', ARGV[i + 5])
    redis.call('HSET', KEYS[3], 'status' .. suffix, ARGV[i + 3],
      'status_at' .. suffix, ARGV[i + 5] .. ' ' .. id)
  else
    redis.call('XADD', stream, 'MAXLEN', '~', ARGV[4], '*',
      'type', kind, 'data', ARGV[i + 3], 't', ARGV[i + 4])
    redis.call('HSET', KEYS[3], 'status' .. suffix, ARGV[i + 3])
    redis.call('HDEL', KEYS[3], 'status_at' .. suffix)
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
for i = 7, 6 + adds do
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[i])
end
for i = 7 + adds, first - 1 do
  redis.call('ZREM', KEYS[2], ARGV[i])
end
return redis.call('ZRANGE', KEYS[2], 0, -1)
"""
)

RELEASE: Final = """
-- Give the lease up (compare and delete), appending last statuses first when given.
-- KEYS: lease, demand, meta, then the router's streams (one per source)
-- ARGV: token, stream length, n: how many demand entries follow to remove, the n entries,
--       then per status: stream index, meta suffix, status JSON, publish time, position (seq;
--       empty from a replica that does not say), kept with its entry id as in TICK
-- Reply: 1 when released, 0 when the lease was not this token's (nothing is changed then)
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local removes = tonumber(ARGV[3])
for i = 4 + removes, #ARGV, 5 do
  local stream = KEYS[3 + tonumber(ARGV[i])]
  if ARGV[i + 4] ~= '' then
    local id = redis.call('XADD', stream, 'MAXLEN', '~', ARGV[2], '*',
      'type', 'status', 'data', ARGV[i + 2], 't', ARGV[i + 3], 'seq', ARGV[i + 4])
    redis.call('HSET', KEYS[3], 'status' .. ARGV[i + 1], ARGV[i + 2],
      'status_at' .. ARGV[i + 1], ARGV[i + 4] .. ' ' .. id)
  else
    redis.call('XADD', stream, 'MAXLEN', '~', ARGV[2], '*',
      'type', 'status', 'data', ARGV[i + 2], 't', ARGV[i + 3])
    redis.call('HSET', KEYS[3], 'status' .. ARGV[i + 1], ARGV[i + 2])
    redis.call('HDEL', KEYS[3], 'status_at' .. ARGV[i + 1])
  end
end
redis.call('DEL', KEYS[1])
for i = 4, 3 + removes do
  redis.call('ZREM', KEYS[2], ARGV[i])
end
return 1
"""
