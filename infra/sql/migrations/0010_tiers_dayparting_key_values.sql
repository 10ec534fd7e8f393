-- Decisioning III (issue 22): priority tiers, competitive exclusion, dayparting, key-values, ad sizes.
--
-- 1. campaigns.tier: sponsorship (goal-based, beats standard while behind its curve), standard
--    (the CPM auction, the old behaviour and the default) or house (no charge, only when nothing
--    else is eligible). A sponsorship has a goal: goal_impressions per campaign day or lifetime
--    (goal_period); other tiers have none.
-- 2. campaigns.exclusion_labels: two campaigns sharing a label never fill two slots of a request.
-- 3. campaigns.daypart: {"days": [...], "hours": [...]} in the campaign's time zone; NULL: always.
-- 4. campaigns.key_values / excluded_key_values: {"key": ["value", ...]}; any-of per key (every
--    key must match), none-of. Empty objects: unrestricted.
-- 5. ads.width / ads.height: the creative's size in pixels, both or neither.
-- Defaults keep every existing campaign and ad behaving as before.

ALTER TABLE campaigns
  ADD COLUMN tier VARCHAR(16) NOT NULL DEFAULT 'standard',
  ADD COLUMN goal_impressions BIGINT,
  ADD COLUMN goal_period VARCHAR(16),
  ADD COLUMN exclusion_labels TEXT[] NOT NULL DEFAULT '{}',
  ADD COLUMN daypart JSONB,
  ADD COLUMN key_values JSONB NOT NULL DEFAULT '{}',
  ADD COLUMN excluded_key_values JSONB NOT NULL DEFAULT '{}',
  ADD CONSTRAINT campaigns_tier_known CHECK (tier IN ('sponsorship', 'standard', 'house')),
  ADD CONSTRAINT campaigns_goal_whole CHECK (
    (goal_impressions IS NULL) = (goal_period IS NULL)
    AND (goal_impressions IS NULL) = (tier <> 'sponsorship')
    AND (goal_impressions IS NULL OR goal_impressions > 0)
    AND (goal_period IS NULL OR goal_period IN ('day', 'lifetime'))
  );

ALTER TABLE ads
  ADD COLUMN width INTEGER,
  ADD COLUMN height INTEGER,
  ADD CONSTRAINT ads_size_whole CHECK (
    (width IS NULL) = (height IS NULL) AND (width IS NULL OR (width > 0 AND height > 0))
  );
