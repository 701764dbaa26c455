"""The Lua scripts of cluster mode: each is one atomic step of a router's lease.

Keys are those of ``gateway.core.cluster.RouterKeys``; times are Redis's own (``TIME``, in
milliseconds), so the replicas' clocks never have to agree for demand to expire or a lease to be
taken. ``gateway.cluster`` runs them with ``EVALSHA`` (loaded once, loaded again after a
``NOSCRIPT``). Each script's comment states its keys, arguments and reply.
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
-- A replica with local demand: announce it, and take the lease if nobody holds it.
-- KEYS: lease, demand, meta
-- ARGV: token, lease ttl (ms), replica id, demand ttl (ms)
-- Reply: {1 if the lease was taken else 0, Redis time (ms), meta seq or '', meta status or ''}
"""
    + _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[3])
local taken = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0
local meta = redis.call('HMGET', KEYS[3], 'seq', 'status')
return {taken, now, meta[1] or '', meta[2] or ''}
"""
)

TICK: Final = (
    """
-- The holder's tick: renew the lease, append what it publishes, keep demand fresh. Nothing is
-- appended and nothing renewed unless the lease is still this token's.
-- KEYS: lease, demand, stream, meta
-- ARGV: token, lease ttl (ms), replica id, demand ttl (ms; '0' = no local demand), stream
--       length, then per entry: kind ('traffic'|'status'), data (JSON), publish time, seq
-- Reply: -1 when the lease is lost, else how many replicas have demand (this one included)
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
"""
    + _NOW
    + """
for i = 6, #ARGV, 4 do
  local kind = ARGV[i]
  if kind == 'traffic' then
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*',
      'type', kind, 'data', ARGV[i + 1], 't', ARGV[i + 2], 'seq', ARGV[i + 3])
    redis.call('HSET', KEYS[4], 'seq', ARGV[i + 3])
  else
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*',
      'type', kind, 'data', ARGV[i + 1], 't', ARGV[i + 2])
    redis.call('HSET', KEYS[4], 'status', ARGV[i + 1])
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if ARGV[4] ~= '0' then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[3])
else
  redis.call('ZREM', KEYS[2], ARGV[3])
end
return redis.call('ZCARD', KEYS[2])
"""
)

RELEASE: Final = """
-- Give the lease up (compare and delete), appending a last status first when one is given.
-- KEYS: lease, demand, stream, meta
-- ARGV: token, replica id, stream length, [status JSON, publish time]
-- Reply: 1 when released, 0 when the lease was not this token's (nothing is changed then)
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if #ARGV >= 5 then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*',
    'type', 'status', 'data', ARGV[4], 't', ARGV[5])
  redis.call('HSET', KEYS[4], 'status', ARGV[4])
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
"""
