-- The schema of the specification (docs/specification.md, "Tables"),
-- unchanged: campaigns with their targeting rules and ads, exact daily metrics, and the log of
-- every counted event (its unique event_id is what makes redelivered events count once).
-- gen_random_uuid() is built into PostgreSQL 13+, no extension needed.
-- Later migrations carry the changes; this file is history and must not be edited.

CREATE TABLE campaigns (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  name VARCHAR(255) NOT NULL,
  advertiser_id UUID NOT NULL,
  status VARCHAR(20) NOT NULL DEFAULT 'active', -- active, paused, ended
  cpm_bid DECIMAL(10, 4) NOT NULL,
  daily_budget DECIMAL(12, 2) NOT NULL,
  lifetime_budget DECIMAL(12, 2),
  spent_today DECIMAL(12, 2) DEFAULT 0,
  lifetime_spent DECIMAL(12, 2) DEFAULT 0,
  created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  CONSTRAINT cpm_positive CHECK (cpm_bid > 0)
);

CREATE INDEX idx_campaigns_advertiser ON campaigns(advertiser_id);
CREATE INDEX idx_campaigns_status ON campaigns(status);

CREATE TABLE campaign_targeting_rules (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  campaign_id UUID NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
  rule_type VARCHAR(50) NOT NULL, -- country, device_type, interest, age_range
  rule_value VARCHAR(255) NOT NULL,
  created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

CREATE INDEX idx_targeting_campaign ON campaign_targeting_rules(campaign_id);
CREATE INDEX idx_targeting_type ON campaign_targeting_rules(rule_type);

CREATE TABLE ads (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  campaign_id UUID NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
  title VARCHAR(255) NOT NULL,
  image_url VARCHAR(2048) NOT NULL,
  redirect_url VARCHAR(2048) NOT NULL,
  created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

CREATE INDEX idx_ads_campaign ON ads(campaign_id);

CREATE TABLE daily_metrics (
  id BIGSERIAL PRIMARY KEY,
  campaign_id UUID NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
  date DATE NOT NULL,
  impressions BIGINT DEFAULT 0,
  clicks BIGINT DEFAULT 0,
  spend DECIMAL(12, 2) DEFAULT 0,
  created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  UNIQUE (campaign_id, date)
);

CREATE INDEX idx_metrics_campaign_date ON daily_metrics(campaign_id, date);
CREATE INDEX idx_metrics_date ON daily_metrics(date);

CREATE TABLE events_log (
  id BIGSERIAL PRIMARY KEY,
  event_id UUID NOT NULL UNIQUE,
  event_type VARCHAR(20) NOT NULL, -- impression, click
  campaign_id UUID NOT NULL REFERENCES campaigns(id),
  ad_id UUID NOT NULL REFERENCES ads(id),
  user_id VARCHAR(255) NOT NULL,
  placement_id VARCHAR(255) NOT NULL,
  bid_price DECIMAL(10, 4),
  timestamp TIMESTAMP NOT NULL,
  created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

CREATE INDEX idx_events_campaign ON events_log(campaign_id);
CREATE INDEX idx_events_timestamp ON events_log(timestamp DESC);
CREATE INDEX idx_events_type ON events_log(event_type);
