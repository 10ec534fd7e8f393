-- Reporting by hour (issue 24): impressions, clicks and spend per UTC hour and per campaign,
-- ad, placement, country and device type, kept by the pipeline in the same statement as
-- events_log and daily_metrics (pipeline/store/daily_metrics.py), so exactly once as they are:
-- an event counts here only when its events_log row is inserted.
--
-- Absent dimensions are '' (not NULL), so that one row per key exists and the upsert can find
-- it. The rows already in events_log are carried over.

CREATE TABLE hourly_metrics (
  hour TIMESTAMP NOT NULL, -- the UTC hour's start
  campaign_id UUID NOT NULL, -- as events_log: no foreign key
  ad_id UUID NOT NULL,
  placement_id VARCHAR(255) NOT NULL DEFAULT '',
  country VARCHAR(8) NOT NULL DEFAULT '',
  device_type VARCHAR(32) NOT NULL DEFAULT '',
  impressions BIGINT NOT NULL DEFAULT 0,
  clicks BIGINT NOT NULL DEFAULT 0,
  spend DECIMAL(18, 6) NOT NULL DEFAULT 0,
  PRIMARY KEY (campaign_id, hour, ad_id, placement_id, country, device_type)
);

CREATE INDEX idx_hourly_metrics_hour ON hourly_metrics(hour);

INSERT INTO hourly_metrics AS h
  (hour, campaign_id, ad_id, placement_id, country, device_type, impressions, clicks, spend)
SELECT date_trunc('hour', timestamp), campaign_id, ad_id, COALESCE(placement_id, ''),
       COALESCE(country, ''), COALESCE(device_type, ''),
       count(*) FILTER (WHERE event_type = 'impression'),
       count(*) FILTER (WHERE event_type = 'click'),
       COALESCE(sum(price), 0)
FROM events_log
GROUP BY 1, 2, 3, 4, 5, 6;
