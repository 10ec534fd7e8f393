-- Add a batch of records to today's counters past the partition's watermark (stores/live_counters.py).
-- KEYS[1]: the watermark; KEYS[2..n]: counter keys. ARGV[1]: the offset the watermark moves to;
-- ARGV[2..n]: the expiry (Unix time) of KEYS[2..n]; ARGV[n+1]: the records in offset order, as
-- "offset,count key index,spend key index (0: none),price micros;" each (one string: packing
-- thousands of separate arguments costs the caller more than the script).
local watermark = tonumber(redis.call('GET', KEYS[1]) or '-1')
local counters = #KEYS
local sums = {}
local applied = 0
for offset, count_key, spend_key, price in
    string.gmatch(ARGV[counters + 1], '(%d+),(%d+),(%d+),(%d+);') do
  if tonumber(offset) > watermark then
    applied = applied + 1
    count_key = tonumber(count_key)
    sums[count_key] = (sums[count_key] or 0) + 1
    spend_key = tonumber(spend_key)
    if spend_key > 0 then
      sums[spend_key] = (sums[spend_key] or 0) + tonumber(price)
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
return {applied, watermark}
