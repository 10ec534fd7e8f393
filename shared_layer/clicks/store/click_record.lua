-- Record a click once per impression (clicks/store/click_ledger.py): check, append, mark, atomic.
-- KEYS[1] click::seen::{shard<k>of<n>}::<impressionId>, KEYS[2] that shard's outbox stream.
-- ARGV[1] TTL of the seen key (seconds), ARGV[2..] the XADD field/value list (outbox_fields).
-- Returns 1 when the click was recorded now, 0 when this impression's click was recorded before.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('XADD', KEYS[2], '*', unpack(ARGV, 2))
redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
return 1
