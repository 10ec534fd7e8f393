-- Advertiser accounts (issue 24): advertisers and their API keys, each with a role.
--
-- 1. advertisers: the accounts campaigns belong to (campaigns.advertiser_id names one; no
--    foreign key, so campaigns made before accounts existed keep working), with the currency
--    the console shows and the time zone reports default to.
-- 2. api_keys: a key is "adk_<id>_<secret>". Only the id (public, the row's key) and an Argon2id
--    hash of the whole key are stored, never the key itself. role: admin (every advertiser,
--    accounts and floors; no advertiser), advertiser (its own campaigns, read and write) or
--    reporting (its own campaigns and reports, read only). A revoked key keeps its row
--    (revoked_at set) so that lists and audits still name it.

CREATE TABLE advertisers (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  name VARCHAR(255) NOT NULL,
  currency CHAR(3) NOT NULL DEFAULT 'USD',
  time_zone VARCHAR(64) NOT NULL DEFAULT 'UTC',
  created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')
);

CREATE TABLE api_keys (
  id VARCHAR(32) PRIMARY KEY,
  role VARCHAR(16) NOT NULL,
  advertiser_id UUID REFERENCES advertisers(id) ON DELETE CASCADE,
  label VARCHAR(255) NOT NULL DEFAULT '',
  secret_hash VARCHAR(255) NOT NULL,
  created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
  revoked_at TIMESTAMP,
  CONSTRAINT api_keys_role_known CHECK (role IN ('admin', 'advertiser', 'reporting')),
  CONSTRAINT api_keys_advertiser_by_role CHECK ((role = 'admin') = (advertiser_id IS NULL))
);

CREATE INDEX idx_api_keys_advertiser ON api_keys(advertiser_id);
