-- History at scale: rollups and incidents, the same tables as the embedded schema's
-- `migrations/sqlite/0002_history.sql`, written the PostgreSQL way.
--
-- Raw results stay one table. Pruning deletes each monitor's oldest results as a range of the
-- primary key, a few monitors per transaction, which never blocks writers for long and needs
-- no partition management; partitioning `results` by day (so that pruning drops a partition)
-- remains possible later, since `checked_at` is part of its key.

-- Rollups: what each monitor's results add up to per minute, hour and day, kept up to date in
-- the same transaction as the results. `resolution` is the bucket's length in seconds (60,
-- 3600 or 86400), `bucket_start` the start of a whole UTC minute, hour or day. Counts of `up`
-- and `down` results; response times: the sum in ms for the mean, the exact min and max, and
-- `sketch`, the compact encoding of a mergeable histogram for p50, p95 and p99. Writers lock
-- the rows they add to (in key order) so that two loggers never lose each other's counts.
CREATE TABLE rollups (
    monitor_id   uuid        NOT NULL,
    bucket_start timestamptz NOT NULL,
    rt_sum       bigint      NOT NULL,
    resolution   integer     NOT NULL CHECK (resolution IN (60, 3600, 86400)),
    up           integer     NOT NULL,
    down         integer     NOT NULL,
    rt_min       integer,
    rt_max       integer,
    sketch       bytea       NOT NULL,
    PRIMARY KEY (monitor_id, resolution, bucket_start)
);

-- Incidents: each DOWN period of a monitor, opened in the same transaction as the down alert
-- and closed with the recovery alert. Ids are UUIDv7 made at opening, so id order is time
-- order. Incidents go with their monitor when it is deleted.
CREATE TABLE incidents (
    id                uuid        NOT NULL PRIMARY KEY,
    monitor_id        uuid        NOT NULL,
    started_at        timestamptz NOT NULL,
    ended_at          timestamptz,
    status_code       smallint,
    error_kind        text,
    error_message     text,
    down_alert_id     uuid,
    recovery_alert_id uuid
);

-- A monitor's incidents newest first, and its open incident when it recovers.
CREATE INDEX incidents_by_monitor ON incidents (monitor_id, id);

-- Open incidents across all monitors, newest first, without scanning closed ones.
CREATE INDEX incidents_open ON incidents (id) WHERE ended_at IS NULL;

-- Counting an incident's delivered notifications reads deliveries by alert.
CREATE INDEX alert_deliveries_by_alert ON alert_deliveries (alert_id, state);
