-- Improvements over the specification for the campaigns admin API
-- (shared_layer/campaigns/store/campaigns.py).
--
-- 1. The database refuses what the API refuses: unknown statuses and rule types, negative
--    budgets, a lifetime budget below the daily one. The API validates first (and names the
--    field); these constraints keep any other writer (a script, psql) from storing a campaign
--    the auction would misread.
-- 2. A targeting rule is a set member: the same (type, value) twice on one campaign means
--    nothing more, so it is unique. Its index starts with campaign_id, which makes the specification's
--    idx_targeting_campaign redundant (one more write per rule, no query it would serve).
-- 3. Ads are never deleted, only marked removed (removed_at): events_log references ads(id)
--    without ON DELETE, so an ad that was ever shown must stay for its events and analytics.
--    Replacing a campaign's ads marks those left out as removed.
-- 4. Listing pages by id within a status or an advertiser (keyset pagination, ORDER BY id):
--    (status, id) and (advertiser_id, id) serve both the filter and the order, and replace the
--    specification's single-column indexes. load_active() uses (status, id) too.

ALTER TABLE campaigns
  ADD CONSTRAINT campaigns_status_known CHECK (status IN ('active', 'paused', 'ended')),
  ADD CONSTRAINT campaigns_budgets_not_negative
    CHECK (daily_budget >= 0 AND (lifetime_budget IS NULL OR lifetime_budget >= 0)),
  ADD CONSTRAINT campaigns_lifetime_covers_daily
    CHECK (lifetime_budget IS NULL OR lifetime_budget >= daily_budget);

ALTER TABLE campaign_targeting_rules
  ADD CONSTRAINT targeting_rule_type_known
    CHECK (rule_type IN ('country', 'device_type', 'interest', 'age_range', 'placement')),
  ADD CONSTRAINT targeting_rule_once UNIQUE (campaign_id, rule_type, rule_value);

DROP INDEX IF EXISTS idx_targeting_campaign;

ALTER TABLE ads ADD COLUMN removed_at TIMESTAMP;

CREATE INDEX idx_campaigns_status_id ON campaigns (status, id);
CREATE INDEX idx_campaigns_advertiser_id ON campaigns (advertiser_id, id);
DROP INDEX IF EXISTS idx_campaigns_status;
DROP INDEX IF EXISTS idx_campaigns_advertiser;
