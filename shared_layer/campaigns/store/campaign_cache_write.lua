-- Write campaign cache entries, the active set and the version, then notify (campaigns/store/cache.py).
-- KEYS[1] set, KEYS[2] version, KEYS[3] built marker, KEYS[4..] entries.
-- ARGV[1] channel, ARGV[2] message, ARGV[3] entry TTL, then per entry: json, active flag, id.
local warm = redis.call('EXISTS', KEYS[3]) == 1
local n = #KEYS - 3
for i = 1, n do
  local json = ARGV[3 + (i - 1) * 3 + 1]
  local active = ARGV[3 + (i - 1) * 3 + 2]
  local id = ARGV[3 + (i - 1) * 3 + 3]
  redis.call('SET', KEYS[3 + i], json, 'EX', ARGV[3])
  if warm then
    if active == '1' then
      redis.call('SADD', KEYS[1], id)
    else
      redis.call('SREM', KEYS[1], id)
    end
  end
end
local version = redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[1], ARGV[2])
return version
