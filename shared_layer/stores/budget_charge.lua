-- The budget charge: core.budget.check_charge as one atomic step (stores/budget_ledger.py).
-- KEYS[1] daily key, KEYS[2] lifetime key, KEYS[3] the event outbox stream, KEYS[4] the ready key.
-- ARGV[1] price, ARGV[2] daily budget, ARGV[3] lifetime budget (-1: none), ARGV[4] daily key TTL,
-- ARGV[5..] the impression's outbox fields (none: nothing recorded).
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
daily = redis.call('INCRBY', KEYS[1], price)
if daily == price then
  redis.call('EXPIRE', KEYS[1], ARGV[4])
end
lifetime = redis.call('INCRBY', KEYS[2], price)
if #ARGV > 4 then
  redis.call('XADD', KEYS[3], '*', unpack(ARGV, 5))
end
return {0, daily, lifetime}
