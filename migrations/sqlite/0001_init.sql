-- The initial schema of upwatch's embedded SQLite store.
--
-- Conventions used by every table:
-- - Identifiers are UUIDs stored as their 16 raw bytes (BLOB). Ids are UUIDv7, whose
--   big-endian bytes sort by creation time, and SQLite compares BLOBs byte by byte, so
--   `ORDER BY id` is creation order.
-- - Times are INTEGER milliseconds since the Unix epoch (UTC).
-- - Values that only the application interprets (a monitor's settings, a state, an alert)
--   are stored whole as JSON text, so that adding a field to them needs no migration.

-- Monitors: the sites to check and how. The whole `Monitor` is kept as JSON in `spec`; `url`
-- is copied out of it only so that it can be indexed. The key is the monitor's id because
-- every other table refers to monitors by it.
CREATE TABLE monitors (
    id         BLOB    NOT NULL PRIMARY KEY,
    url        TEXT    NOT NULL,
    spec       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- Finds the first monitor (lowest id) with a given URL, for the one-time seeding of
-- `SITES_TO_MONITOR`, without scanning or sorting.
CREATE INDEX monitors_by_url ON monitors (url, id);

-- Results: the history of every check, the largest table by far. It is clustered (WITHOUT
-- ROWID) on (monitor_id, checked_at, id) so that a monitor's history, read newest first, is
-- one contiguous range of the table itself, with no second index to keep up to date. The
-- result id ends the key to tell apart two results checked in the same millisecond; a
-- redelivered result has the same three key values, so `INSERT OR IGNORE` stores it once.
-- There is deliberately no foreign key to `monitors`: the store drops results of unknown
-- monitors itself, and deleting a monitor deletes its results explicitly.
CREATE TABLE results (
    monitor_id       BLOB    NOT NULL,
    checked_at       INTEGER NOT NULL,
    id               BLOB    NOT NULL,
    response_time_ms INTEGER NOT NULL,
    status_code      INTEGER,
    up               INTEGER NOT NULL CHECK (up IN (0, 1)),
    error_kind       TEXT,
    error_message    TEXT,
    PRIMARY KEY (monitor_id, checked_at, id)
) STRICT, WITHOUT ROWID;

-- Monitor state: what the up/down state machine remembers of each monitor (status,
-- consecutive counts, the last result), as the JSON of `MonitorState`. One row per monitor,
-- so the key is the monitor's id; it goes with its monitor.
CREATE TABLE monitor_state (
    monitor_id BLOB NOT NULL PRIMARY KEY REFERENCES monitors (id) ON DELETE CASCADE,
    state      TEXT NOT NULL
) STRICT;

-- Webhooks: where alerts are sent. A configured webhook's id is derived from its URL, so that
-- re-creating it at every start updates the same row instead of adding one. `enabled` becomes
-- 0 when the endpoint is gone, with the reason kept for people to see.
CREATE TABLE webhooks (
    id              BLOB    NOT NULL PRIMARY KEY,
    name            TEXT    NOT NULL,
    url             TEXT    NOT NULL,
    enabled         INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    disabled_reason TEXT,
    source          TEXT    NOT NULL CHECK (source IN ('config', 'api')),
    created_at      INTEGER NOT NULL
) STRICT;

-- Alerts: one row per transition of a monitor (down or recovery), the `Alert` kept whole as
-- JSON in `payload` so that any notifier can format it later. Keyed by the alert's own id,
-- which deliveries refer to. Alerts are history: they stay when their monitor is deleted, so
-- `monitor_id` has no foreign key.
CREATE TABLE alerts (
    id         BLOB    NOT NULL PRIMARY KEY,
    monitor_id BLOB    NOT NULL,
    kind       TEXT    NOT NULL CHECK (kind IN ('down', 'recovery')),
    payload    TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

-- Alert deliveries: the outbox, one row per alert and webhook. Rows are written in the same
-- transaction as the alert, so an alert is never lost between the decision and the sending.
-- The key is an increasing integer (AUTOINCREMENT never reuses a value) because the
-- deliveries of one webhook must go out in the order they were created.
-- `state` moves from 'pending' to 'sent' or 'failed' (given up for good).
CREATE TABLE alert_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id        BLOB    NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    webhook_id      BLOB    NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER
) STRICT;

-- Serves every read of the outbox, each of which names a webhook and a state: the next
-- pending delivery of a webhook is the first entry for (webhook_id, 'pending'); whether a
-- webhook has pending deliveries, and how many are pending in all, are answered webhook by
-- webhook from it, so done deliveries are never scanned however long the history grows. It
-- also keeps the cascade from a deleted webhook from scanning the whole table.
CREATE INDEX alert_deliveries_by_webhook ON alert_deliveries (webhook_id, state, id);

-- Small counters. `monitors_version` is increased in the same transaction as every insert,
-- update and delete of a monitor, so that a scheduler can poll one row to learn whether it
-- must reload the monitors.
CREATE TABLE meta (
    key   TEXT    NOT NULL PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;

INSERT INTO meta (key, value) VALUES ('monitors_version', 0);
