-- Raw results in day partitions, keyed by (series, checked_at) without a per-result id, so
-- that a result takes about 52 bytes in the heap and 24 in the key's index, and retention
-- drops whole days instead of deleting rows (issue 16).
--
-- A series is one monitor as checked by one region: its number (4 bytes) stands for the
-- monitor's uuid and the region's name in every result row. A result's id is derived from
-- its key (`CheckResult::key_id`), so the store gives it back without keeping it.

CREATE TABLE series (
    seq        integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    monitor_id uuid    NOT NULL REFERENCES monitors (id) ON DELETE CASCADE,
    -- '' for the default region.
    region     text    NOT NULL,
    UNIQUE (monitor_id, region)
);

ALTER TABLE results RENAME TO results_before_series;
ALTER TABLE results_before_series RENAME CONSTRAINT results_pkey TO results_before_series_pkey;

-- Columns in an order that leaves no padding: 8 + 4 + 4 + 2 + 1 + 1 bytes, and eight columns,
-- so that the null bitmap fits the 24-byte row header.
CREATE TABLE results (
    checked_at       timestamptz NOT NULL,
    series           integer     NOT NULL,
    response_time_ms integer     NOT NULL CHECK (response_time_ms >= 0),
    status_code      smallint,
    up               boolean     NOT NULL,
    maintenance      boolean     NOT NULL DEFAULT false,
    error_kind       text,
    error_message    text,
    -- Two integers of 4 and 8 bytes: an index entry of 24 bytes, which PostgreSQL's B-tree
    -- splits as a series of rising keys (a page left 90% full, not half).
    PRIMARY KEY (series, checked_at)
) PARTITION BY RANGE (checked_at);

-- The days the history holds, each a partition named results_YYYYMMDD (UTC); later days are
-- made by the logger as results of them arrive, and ahead of time by the pruner.
DO $$
DECLARE
    day date;
BEGIN
    FOR day IN
        SELECT DISTINCT (checked_at AT TIME ZONE 'UTC')::date FROM results_before_series
    LOOP
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF results FOR VALUES FROM (%L) TO (%L)',
            'results_' || to_char(day, 'YYYYMMDD'),
            day::timestamp AT TIME ZONE 'UTC',
            (day + 1)::timestamp AT TIME ZONE 'UTC'
        );
    END LOOP;
END $$;

INSERT INTO series (monitor_id, region)
SELECT DISTINCT r.monitor_id, COALESCE(r.region, '')
FROM results_before_series r
JOIN monitors m ON m.id = r.monitor_id;

INSERT INTO results
    (checked_at, series, response_time_ms, status_code, up, maintenance, error_kind, error_message)
SELECT r.checked_at, s.seq, r.response_time_ms, r.status_code, r.up, r.maintenance,
       r.error_kind, r.error_message
FROM results_before_series r
JOIN series s ON s.monitor_id = r.monitor_id AND s.region = COALESCE(r.region, '')
ORDER BY s.seq, r.checked_at
ON CONFLICT DO NOTHING;

DROP TABLE results_before_series;
