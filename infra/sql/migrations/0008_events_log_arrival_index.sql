-- A BRIN index on events_log.created_at (arrival time): the live counters' rebuild after Redis
-- lost its data (shared_layer/pipeline/service/live_counters_recovery.py) reads the events that arrived
-- in the last minutes, so that a copy of one of them coming later is not counted again.
--
-- Why BRIN: rows arrive in created_at order, so a block range summary (a few bytes per 128
-- pages) finds the recent rows without reading the day's partition, and costs an insert almost
-- nothing (a B-tree on this column would cost every one of tens of thousands of inserts a
-- second). Created on the partitioned table, it exists on every partition, present and future.
CREATE INDEX IF NOT EXISTS idx_events_log_arrival ON events_log USING brin (created_at);
