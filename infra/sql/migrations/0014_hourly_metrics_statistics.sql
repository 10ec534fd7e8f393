-- The hourly report's planner statistics (issue 24's whole-account report).
--
-- A report groups hourly_metrics by some of (hour, campaign, ad, placement, country, device
-- type). Alone, each column has many values, and PostgreSQL multiplies them: for 90 days of
-- 1k campaigns by every dimension it expected 291,508 groups where there were 20,000 (an ad
-- belongs to one campaign; a campaign serves a few placements, countries and devices). It then
-- sorted 2.16M rows on disk instead of hashing 20k groups in memory. These statistics record
-- how many distinct values the columns take together, for every combination of them.
--
-- They are gathered by the next ANALYZE of the table (autovacuum's, or one run by hand), not
-- here: a migration stays quick whatever the table's size.

CREATE STATISTICS hourly_metrics_dimensions (ndistinct)
  ON hour, campaign_id, ad_id, placement_id, country, device_type
  FROM hourly_metrics;
