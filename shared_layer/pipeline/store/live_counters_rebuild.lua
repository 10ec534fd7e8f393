-- Rebuild one day's counters from PostgreSQL after Redis lost them (pipeline/store/live_counters.py).
-- KEYS[1]: the ready key; KEYS[2]: the time the counters were found lost; KEYS[3..n]: the
-- day's counter keys.
-- ARGV[1]: the ready key's value; ARGV[2]: the dedupe window (s); ARGV[3..n]: what PostgreSQL
-- holds for KEYS[3..n] (daily_metrics, one snapshot); ARGV[n+1]: the keys' expiry (Unix
-- time); ARGV[n+2]: the lost-at value the snapshot was taken under ('' for none); ARGV[n+3]:
-- the prefix of the seen keys (with the shard's hash tag on a Redis Cluster); ARGV[n+4]: the
-- snapshot's recent events (logged since shortly before the loss), as
-- "event id,count key index,spend key index (0: none),price micros;" each.
-- While the counters were not ready, live-counters went on counting into them, keeping each
-- id it counted as seen (ARGV[n+3] .. id = '1'). An event both in the snapshot and counted so is
-- taken off once; every recent event of the snapshot is marked seen ('r'), so a copy that
-- comes later is not counted either. Result: counters = PostgreSQL's snapshot + what was
-- counted live and is not in it, atomically, then ready. Returns the overlap, or -1 when the
-- counters are ready already, -2 when Redis lost them again since the snapshot.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return -1
end
local n = #KEYS
if (redis.call('GET', KEYS[2]) or '') ~= ARGV[n + 2] then
  return -2
end
local delta = {}
for k = 3, n do
  delta[k] = tonumber(ARGV[k])
end
local overlap = 0
for event_id, count_key, spend_key, price in
    string.gmatch(ARGV[n + 4], '([^,;]+),(%d+),(%d+),(%d+);') do
  local seen = ARGV[n + 3] .. event_id
  local mark = redis.call('GET', seen)
  if mark == '1' then
    overlap = overlap + 1
    count_key = tonumber(count_key)
    delta[count_key] = delta[count_key] - 1
    spend_key = tonumber(spend_key)
    if spend_key > 0 then
      delta[spend_key] = delta[spend_key] - tonumber(price)
    end
  end
  if mark ~= 'r' then
    redis.call('SET', seen, 'r', 'EX', ARGV[2])
  end
end
for k = 3, n do
  if delta[k] ~= 0 then
    redis.call('INCRBY', KEYS[k], string.format('%.0f', delta[k]))
    redis.call('EXPIREAT', KEYS[k], ARGV[n + 1])
  end
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return overlap
