-- Settle or release one reservation (bidding/store/reservations.py), exactly once.
-- KEYS[1] the reservation hash, KEYS[2] its daily spend key, KEYS[3] its lifetime spend key,
-- KEYS[4] the shard's event outbox stream, KEYS[5] the shard's window ZSET, KEYS[6] the
-- campaign-day tally hash.
-- ARGV[1] 'settle', 'win' or 'release'; ARGV[2] the price (micros) to settle or win at, at most
-- the amount reserved; ARGV[3..] (settle) the impression's outbox fields.
-- 'win' records a win notice's price on a reservation still open (the window's end then
-- settles at it, for exchanges that send no billing notice); 'settle' moves the spend from the
-- amount reserved to the price, appends the impression event and closes the reservation;
-- 'release' returns the whole amount and closes it. Only an open reservation ('reserved' or
-- 'won') changes: a repeat, a late or a reordered notice changes nothing.
-- Returns {1, new state} when it changed the reservation, {0, state} otherwise ('' : unknown).
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'reserved' and state ~= 'won' then
  return {0, state or ''}
end
local mode = ARGV[1]
if mode == 'win' then
  if state == 'won' then
    return {0, state}
  end
  redis.call('HSET', KEYS[1], 'state', 'won', 'price', ARGV[2])
  return {1, 'won'}
end
local amount = tonumber(redis.call('HGET', KEYS[1], 'amount'))
local price = 0
if mode == 'settle' then
  price = tonumber(ARGV[2])
end
local refund = amount - price
if refund > 0 then
  redis.call('DECRBY', KEYS[2], refund)
  redis.call('DECRBY', KEYS[3], refund)
end
redis.call('ZREM', KEYS[5], KEYS[1])
if mode == 'settle' then
  redis.call('HSET', KEYS[1], 'state', 'settled', 'price', price)
  redis.call('HINCRBY', KEYS[6], 'settled', 1)
  redis.call('HINCRBY', KEYS[6], 'settledMicros', price)
  redis.call('HINCRBY', KEYS[6], 'settledReservedMicros', amount)
  redis.call('XADD', KEYS[4], '*', unpack(ARGV, 3))
  return {1, 'settled'}
end
redis.call('HSET', KEYS[1], 'state', 'released')
redis.call('HINCRBY', KEYS[6], 'released', 1)
redis.call('HINCRBY', KEYS[6], 'releasedMicros', amount)
return {1, 'released'}
