-- History at scale: rollups and incidents.

-- Rollups: what each monitor's results add up to per minute, hour and day, kept up to date in
-- the same transaction as the results, so that uptime and percentiles over any range are read
-- from a few rows, never from raw results. `resolution` is the bucket's length in seconds (60,
-- 3600 or 86400) and `start` the bucket's start in seconds since the Unix epoch (rollups are
-- aligned on whole UTC minutes, hours and days, so milliseconds would only cost bytes).
-- Counts: `up` and `down` results (their sum is the number of checks); response times: the
-- sum in ms for the mean, the exact min and max, and `sketch`, the compact encoding of a
-- mergeable histogram (upwatch_core::rollup::LatencySketch) for p50, p95 and p99.
-- Clustered on (monitor_id, resolution, start): every read is one monitor's buckets of one
-- resolution over a range, and pruning deletes the oldest prefix of that same range.
CREATE TABLE rollups (
    monitor_id BLOB    NOT NULL,
    resolution INTEGER NOT NULL CHECK (resolution IN (60, 3600, 86400)),
    start      INTEGER NOT NULL,
    up         INTEGER NOT NULL,
    down       INTEGER NOT NULL,
    rt_sum     INTEGER NOT NULL,
    rt_min     INTEGER,
    rt_max     INTEGER,
    sketch     BLOB    NOT NULL,
    PRIMARY KEY (monitor_id, resolution, start)
) STRICT, WITHOUT ROWID;

-- Incidents: each DOWN period of a monitor, opened in the same transaction as the down alert
-- and closed with the recovery alert. Ids are UUIDv7 made at opening, so id order is time
-- order. The alerts are referenced to count the notifications delivered for the incident.
-- Incidents go with their monitor when it is deleted.
CREATE TABLE incidents (
    id                BLOB    NOT NULL PRIMARY KEY,
    monitor_id        BLOB    NOT NULL,
    started_at        INTEGER NOT NULL,
    ended_at          INTEGER,
    error_kind        TEXT,
    error_message     TEXT,
    status_code       INTEGER,
    down_alert_id     BLOB,
    recovery_alert_id BLOB
) STRICT;

-- A monitor's incidents newest first, and its open incident when it recovers.
CREATE INDEX incidents_by_monitor ON incidents (monitor_id, id);

-- Open incidents across all monitors, newest first, without scanning closed ones.
CREATE INDEX incidents_open ON incidents (id) WHERE ended_at IS NULL;

-- Counting an incident's delivered notifications reads deliveries by alert.
CREATE INDEX alert_deliveries_by_alert ON alert_deliveries (alert_id, state);
