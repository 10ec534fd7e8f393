-- Decisioning III (issue 22): a placement's duplicate level. A several-slot request that sets
-- no level of its own uses the strictest one set on its slots' placements (none < creative <
-- campaign < advertiser; bidding/domain/auction.py, duplicate_level). Kept beside the floor in
-- placement_floors, the table of a placement's auction settings; existing rows get 'none', the
-- behaviour until now.

ALTER TABLE placement_floors
  ADD COLUMN duplicates VARCHAR(16) NOT NULL DEFAULT 'none',
  ADD CONSTRAINT placement_floors_duplicates_known
    CHECK (duplicates IN ('none', 'campaign', 'advertiser', 'creative'));
