-- Log-level export (issue 14): every closed UTC hour of events_log goes to S3-compatible storage
-- as files (functions/export), and retention never drops a day that is not exported and
-- verified.
--
-- log_export_hours: one row per (event type, UTC hour) the exporter has tried. `exported` is
-- written only after every object and the hour's manifest are in the bucket and were read back
-- (sizes and checksums match); `records` is the manifest's record count. `failed` keeps the
-- last error and counts attempts; such an hour is pending again on the next run. An hour with
-- no row is pending. The exporter holds a transaction-level advisory lock on the hour while it
-- writes, so two exporters never write one hour at once and a killed one releases it with its
-- connection.
CREATE TABLE log_export_hours (
  event_type VARCHAR(20) NOT NULL,
  hour TIMESTAMP NOT NULL, -- UTC start of the hour
  status VARCHAR(10) NOT NULL,
  records BIGINT NOT NULL DEFAULT 0,
  objects INTEGER NOT NULL DEFAULT 0,
  manifest_key TEXT,
  manifest_sha256 CHAR(64),
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  exported_at TIMESTAMP,
  updated_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
  PRIMARY KEY (event_type, hour),
  CONSTRAINT log_export_hours_type_known CHECK (event_type IN ('impression', 'click')),
  CONSTRAINT log_export_hours_status_known CHECK (status IN ('exported', 'failed')),
  CONSTRAINT log_export_hours_on_the_hour CHECK (hour = date_trunc('hour', hour)),
  CONSTRAINT log_export_hours_records_not_negative CHECK (records >= 0)
);

-- Reading one hour of a day partition: events arrive roughly in timestamp order, so a BRIN
-- index (a few pages per partition, next to nothing per insert) lets the hour's read skip the
-- other 23 hours instead of scanning the whole day 48 times a day.
CREATE INDEX events_log_timestamp_brin ON events_log USING brin (timestamp)
  WITH (autosummarize = on);

-- Why a day may not be dropped yet, or NULL when it may: every (type, hour) of the day that has
-- events in events_log must be exported with exactly that many records in its manifest. An
-- exported hour whose count no longer matches (an event that arrived late, after the export)
-- is turned back into `failed`, so that the exporter writes it again; the day is kept until it
-- has.
CREATE FUNCTION log_export_day_unverified(for_day DATE) RETURNS TEXT
LANGUAGE plpgsql AS $$
DECLARE
  problem RECORD;
  problems TEXT[] := '{}';
  total INTEGER := 0;
BEGIN
  FOR problem IN
    WITH logged AS (
      SELECT event_type, date_trunc('hour', timestamp) AS hour, count(*) AS records
      FROM events_log WHERE day = for_day GROUP BY 1, 2
    )
    SELECT l.event_type, l.hour, l.records, x.status, x.records AS exported
    FROM logged l
    LEFT JOIN log_export_hours x ON x.event_type = l.event_type AND x.hour = l.hour
    WHERE x.status IS DISTINCT FROM 'exported' OR x.records <> l.records
    ORDER BY l.hour, l.event_type
  LOOP
    total := total + 1;
    IF total <= 3 THEN
      problems := problems || format(
        '%s %s: %s in events_log, %s', to_char(problem.hour, 'YYYY-MM-DD"T"HH24":00Z"'),
        problem.event_type, problem.records,
        CASE WHEN problem.status = 'exported' THEN problem.exported || ' in its manifest'
             WHEN problem.status = 'failed' THEN 'export failed'
             ELSE 'not exported yet' END
      );
    END IF;
    IF problem.status = 'exported' THEN
      UPDATE log_export_hours
      SET status = 'failed',
          last_error = format('%s events in events_log, %s in the manifest: export again',
                              problem.records, problem.exported),
          updated_at = now() AT TIME ZONE 'UTC'
      WHERE event_type = problem.event_type AND hour = problem.hour;
    END IF;
  END LOOP;
  IF total = 0 THEN
    RETURN NULL;
  END IF;
  RETURN format('%s hour(s) not exported and verified: %s%s', total,
                array_to_string(problems, '; '), CASE WHEN total > 3 THEN '; ...' ELSE '' END);
END
$$;

-- The retention job of 0005, with one change: an expired day is dropped only when
-- log_export_day_unverified says nothing against it; otherwise the partition is kept and the
-- row says why (action 'kept', reason). The result gains the `reason` column, so the function
-- is replaced, not altered.
DROP FUNCTION events_log_maintain(DATE, INTEGER, INTEGER);

CREATE FUNCTION events_log_maintain(today DATE, retention_days INTEGER, days_ahead INTEGER)
RETURNS TABLE (action TEXT, partition_day DATE, reason TEXT)
LANGUAGE plpgsql AS $$
DECLARE
  oldest_kept DATE;
  expired RECORD;
  next_day DATE;
  refusal TEXT;
BEGIN
  IF retention_days < 1 OR days_ahead < 1 THEN
    RAISE EXCEPTION 'events_log_maintain: retention_days and days_ahead must be at least 1';
  END IF;
  oldest_kept := today - retention_days;
  -- One maintainer at a time (several function replicas, an operator, a CronJob).
  PERFORM pg_advisory_xact_lock(1163281479); -- 'EVLG'
  FOR expired IN
    SELECT c.relname AS name, to_date(substr(c.relname, 12), 'YYYYMMDD') AS part_day
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'events_log'::regclass AND c.relname ~ '^events_log_[0-9]{8}$'
    ORDER BY 2
  LOOP
    IF expired.part_day < oldest_kept THEN
      refusal := log_export_day_unverified(expired.part_day);
      IF refusal IS NULL THEN
        EXECUTE format('DROP TABLE %I', expired.name);
        action := 'dropped';
        reason := NULL;
      ELSE
        action := 'kept';
        reason := refusal;
      END IF;
      partition_day := expired.part_day;
      RETURN NEXT;
    END IF;
  END LOOP;
  next_day := oldest_kept;
  WHILE next_day <= today + days_ahead LOOP
    IF events_log_create_partition(next_day) THEN
      action := 'created';
      partition_day := next_day;
      reason := NULL;
      RETURN NEXT;
    END IF;
    next_day := next_day + 1;
  END LOOP;
END
$$;
