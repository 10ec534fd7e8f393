-- The budget charge: bidding.domain.budget.check_charge, pacing and the frequency cap as one atomic step
-- (bidding/store/budget_ledger.py).
-- KEYS[1] daily key, KEYS[2] lifetime key, KEYS[3] the event outbox stream, KEYS[4] the ready key,
-- KEYS[5] (only with a frequency cap) the user's impression times for this campaign (a ZSET).
-- ARGV[1] price, ARGV[2] daily budget, ARGV[3] lifetime budget (-1: none), ARGV[4] daily key TTL,
-- ARGV[5] pacing limit: the most the day's spend may reach with this charge (-1: no pacing),
-- ARGV[6] frequency cap impressions (0: none), ARGV[7] its window (ms), ARGV[8] now (ms),
-- ARGV[9] a member unique to this charge, ARGV[10..] the impression's outbox fields (none:
-- nothing recorded).
-- A reservation (openrtb: reserve at the bid, settle on the exchange's notice, reservations.py)
-- instead: ARGV[10] 'reserve', ARGV[11] the window's end (ms), ARGV[12] the would-be
-- impression's outbox fields (JSON), ARGV[13] the reservation record's TTL (s); KEYS[5] is
-- then always given (the frequency key, untouched without a cap), KEYS[6] the reservation
-- hash, KEYS[7] the shard's window ZSET, KEYS[8] the campaign-day tally hash. The spend keys
-- hold the reserved amount until it is settled or released.
-- Amounts stay below 2**53 (money.MAX_MICROS), so Lua's doubles hold them exactly.
-- Returns {outcome, daily spent, lifetime spent}; outcome as in ChargeOutcome.
if redis.call('EXISTS', KEYS[4]) == 0 then
  return {3, 0, 0}
end
local price = tonumber(ARGV[1])
local daily = tonumber(redis.call('GET', KEYS[1]) or '0')
local lifetime = tonumber(redis.call('GET', KEYS[2]) or '0')
local lifetime_budget = tonumber(ARGV[3])
if lifetime_budget >= 0 and lifetime + price > lifetime_budget then
  return {2, daily, lifetime}
end
if daily + price > tonumber(ARGV[2]) then
  return {1, daily, lifetime}
end
local pacing_limit = tonumber(ARGV[5])
if pacing_limit >= 0 and daily + price > pacing_limit then
  return {4, daily, lifetime}
end
local cap = tonumber(ARGV[6])
local now = tonumber(ARGV[8])
if cap > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now - tonumber(ARGV[7]))
  if redis.call('ZCARD', KEYS[5]) >= cap then
    return {5, daily, lifetime}
  end
end
daily = redis.call('INCRBY', KEYS[1], price)
if daily == price then
  redis.call('EXPIRE', KEYS[1], ARGV[4])
end
lifetime = redis.call('INCRBY', KEYS[2], price)
if cap > 0 then
  redis.call('ZADD', KEYS[5], now, ARGV[9])
  redis.call('PEXPIRE', KEYS[5], ARGV[7])
end
if ARGV[10] == 'reserve' then
  redis.call('HSET', KEYS[6], 'state', 'reserved', 'amount', price, 'daily', KEYS[1],
    'lifetime', KEYS[2], 'tally', KEYS[8], 'record', ARGV[12], 'until', ARGV[11])
  redis.call('EXPIRE', KEYS[6], ARGV[13])
  redis.call('ZADD', KEYS[7], ARGV[11], KEYS[6])
  redis.call('HINCRBY', KEYS[8], 'reserved', 1)
  redis.call('HINCRBY', KEYS[8], 'reservedMicros', price)
  redis.call('EXPIRE', KEYS[8], ARGV[4])
elseif #ARGV > 9 then
  redis.call('XADD', KEYS[3], '*', unpack(ARGV, 10))
end
return {0, daily, lifetime}
