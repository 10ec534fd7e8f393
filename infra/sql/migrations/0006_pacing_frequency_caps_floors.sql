-- Decisioning II (issue 11): pacing and frequency caps per campaign, floor prices per placement.
--
-- 1. campaigns.pacing: how the daily budget is spread over the campaign's day (asap = as fast
--    as traffic allows, the old behaviour; even; frontloaded; shared_layer/bidding/domain/pacing.py), in
--    campaigns.time_zone (an IANA name; the daily budget's day is that day too).
-- 2. campaigns.frequency_cap_impressions / _window_seconds: at most that many impressions per
--    user in any window of that many seconds; both set or neither.
-- 3. placement_floors: a floor CPM per placement (DECIMAL(10, 4) as cpm_bid) and how its
--    auction clears (first-price, or second-price: max(next bid, floor) + 1 micro of CPM).
--    Placements are free-form labels in this schema (targeting rules name them), so the table
--    is keyed by that label, with no foreign key.

ALTER TABLE campaigns
  ADD COLUMN pacing VARCHAR(16) NOT NULL DEFAULT 'asap',
  ADD COLUMN time_zone VARCHAR(64) NOT NULL DEFAULT 'UTC',
  ADD COLUMN frequency_cap_impressions INTEGER,
  ADD COLUMN frequency_cap_window_seconds INTEGER,
  ADD CONSTRAINT campaigns_pacing_known CHECK (pacing IN ('asap', 'even', 'frontloaded')),
  ADD CONSTRAINT campaigns_frequency_cap_whole CHECK (
    (frequency_cap_impressions IS NULL) = (frequency_cap_window_seconds IS NULL)
    AND (frequency_cap_impressions IS NULL OR frequency_cap_impressions > 0)
    AND (frequency_cap_window_seconds IS NULL OR frequency_cap_window_seconds > 0)
  );

CREATE TABLE placement_floors (
  placement_id VARCHAR(64) PRIMARY KEY,
  floor_cpm DECIMAL(10, 4) NOT NULL,
  clearing VARCHAR(16) NOT NULL DEFAULT 'first-price',
  created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
  updated_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
  CONSTRAINT placement_floors_not_negative CHECK (floor_cpm >= 0),
  CONSTRAINT placement_floors_clearing_known CHECK (clearing IN ('first-price', 'second-price'))
);
