-- Add a batch of records to the counters past the partition's watermark, each event once
-- (pipeline/store/live_counters.py).
-- KEYS[1]: the partition's watermark; KEYS[2]: the ready key (present once today's counters
-- hold everything PostgreSQL had, see live_counters_rebuild.lua); KEYS[3]: the time the
-- counters were found lost; KEYS[4..n]: counter keys.
-- ARGV[1]: the offset the watermark moves to; ARGV[2]: the dedupe window (s); ARGV[3]: how long
-- an event id is kept while the counters are not ready (s: until the rebuild has used it);
-- ARGV[4..n]: the expiry (Unix time) of KEYS[4..n]; ARGV[n+1]: the prefix of the seen keys (on
-- a Redis Cluster it carries the shard's hash tag, so that the keys named here are in the slot
-- of KEYS); ARGV[n+2]: the records in offset order, as
-- "offset,event id,count key index,spend key index (0: none),price micros;" each (one string:
-- packing thousands of separate arguments costs the caller more than the script).
-- An event counts when its offset is above the watermark (a redelivered record does not) and
-- its id was not counted within the window (a record the outbox relay produced again, at a new
-- offset, does not): the seen key (ARGV[n+1] .. event id) is set NX with the window as its TTL.
local watermark = tonumber(redis.call('GET', KEYS[1]) or '-1')
local ready = redis.call('EXISTS', KEYS[2])
local seen_ttl = ARGV[2]
if ready == 0 then
  -- The rebuild needs every id counted since the loss: keep them until it has run.
  seen_ttl = ARGV[3]
  local now = redis.call('TIME')
  redis.call('SET', KEYS[3], now[1], 'NX')
end
local counters = #KEYS
local seen_prefix = ARGV[counters + 1]
local sums = {}
local applied = 0
local repeated = 0
for offset, event_id, count_key, spend_key, price in
    string.gmatch(ARGV[counters + 2], '(%d+),([^,;]+),(%d+),(%d+),(%d+);') do
  if tonumber(offset) > watermark then
    if redis.call('SET', seen_prefix .. event_id, '1', 'NX', 'EX', seen_ttl) then
      applied = applied + 1
      count_key = tonumber(count_key)
      sums[count_key] = (sums[count_key] or 0) + 1
      spend_key = tonumber(spend_key)
      if spend_key > 0 then
        sums[spend_key] = (sums[spend_key] or 0) + tonumber(price)
      end
    else
      repeated = repeated + 1
    end
  end
end
for k, amount in pairs(sums) do
  redis.call('INCRBY', KEYS[k], string.format('%.0f', amount))
  redis.call('EXPIREAT', KEYS[k], ARGV[k])
end
if tonumber(ARGV[1]) > watermark then
  redis.call('SET', KEYS[1], ARGV[1])
end
return {applied, watermark, ready, repeated}
