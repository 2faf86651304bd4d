-- The initial schema of upwatch's PostgreSQL store, used by the distributed mode.
--
-- It holds the same tables, with the same meaning, as the embedded SQLite schema
-- (`migrations/sqlite/0001_init.sql`), written the PostgreSQL way:
-- - Identifiers are `uuid`. Ids are UUIDv7 and PostgreSQL compares uuids byte by byte, so
--   `ORDER BY id` is creation order.
-- - Times are `timestamptz`. The store writes them cut to the millisecond, as SQLite keeps
--   them, so that both stores give back the same values.
-- - Values that only the application interprets (a monitor's settings, a state, an alert) are
--   stored whole as `jsonb`, so that adding a field to them needs no migration, and so that a
--   person can still query inside them.
--
-- This file is applied by `upwatch migrate` only; the processes of the distributed mode
-- check at start that it was applied and refuse to run otherwise.

-- Monitors: the sites to check and how. The whole `Monitor` is kept in `spec`; `url` is
-- copied out of it only so that it can be indexed. The key is the monitor's id because every
-- other table refers to monitors by it.
CREATE TABLE monitors (
    id         uuid        NOT NULL PRIMARY KEY,
    url        text        NOT NULL,
    spec       jsonb       NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

-- Finds the first monitor (lowest id) with a given URL, for the one-time seeding of
-- `SITES_TO_MONITOR`, without scanning or sorting.
CREATE INDEX monitors_by_url ON monitors (url, id);

-- Results: the history of every check, the largest table by far, which a later migration
-- partitions by day of `checked_at`. The key (monitor_id, checked_at, id) is also the only
-- index: a monitor's history, read newest first, is one range of it scanned backwards, so no
-- second index has to be kept up to date on every insert. The result id ends the key to tell
-- apart two results checked in the same millisecond; a redelivered result has the same three
-- key values, so `ON CONFLICT DO NOTHING` stores it once. `checked_at` being part of the key
-- is also what lets the key survive partitioning by time.
--
-- The row is kept small: the fixed-width columns come first, widest first, so that no
-- padding is needed between them, and the error columns, NULL for every result that is up,
-- cost nothing but a bit in the row's null bitmap then. An HTTP status code fits a
-- `smallint`, and a response time (bounded by the check timeout) an `integer`.
--
-- There is deliberately no foreign key to `monitors`: the store drops results of unknown
-- monitors itself (locking the monitor's row so that a deletion cannot slip in between), and
-- deleting a monitor deletes its results explicitly.
CREATE TABLE results (
    monitor_id       uuid        NOT NULL,
    checked_at       timestamptz NOT NULL,
    id               uuid        NOT NULL,
    response_time_ms integer     NOT NULL CHECK (response_time_ms >= 0),
    status_code      smallint,
    up               boolean     NOT NULL,
    error_kind       text,
    error_message    text,
    PRIMARY KEY (monitor_id, checked_at, id)
);

-- Monitor state: what the up/down state machine remembers of each monitor (status,
-- consecutive counts, the last result), as the JSON of `MonitorState`. One row per monitor,
-- so the key is the monitor's id; the row is created with its monitor and goes with it. The
-- store locks this row (`SELECT ... FOR UPDATE`) while it applies a result, so that two
-- processes applying results of one monitor take turns and a transition alerts once.
CREATE TABLE monitor_state (
    monitor_id uuid  NOT NULL PRIMARY KEY REFERENCES monitors (id) ON DELETE CASCADE,
    state      jsonb NOT NULL
);

-- Webhooks: where alerts are sent. A configured webhook's id is derived from its URL, so that
-- re-creating it at every start updates the same row instead of adding one. `enabled` becomes
-- false when the endpoint is gone, with the reason kept for people to see.
CREATE TABLE webhooks (
    id              uuid        NOT NULL PRIMARY KEY,
    name            text        NOT NULL,
    url             text        NOT NULL,
    enabled         boolean     NOT NULL,
    disabled_reason text,
    source          text        NOT NULL CHECK (source IN ('config', 'api')),
    created_at      timestamptz NOT NULL
);

-- Alerts: one row per transition of a monitor (down or recovery), the `Alert` kept whole in
-- `payload` so that any notifier can format it later. Keyed by the alert's own id, which
-- deliveries refer to. Alerts are history: they stay when their monitor is deleted, so
-- `monitor_id` has no foreign key.
CREATE TABLE alerts (
    id         uuid        NOT NULL PRIMARY KEY,
    monitor_id uuid        NOT NULL,
    kind       text        NOT NULL CHECK (kind IN ('down', 'recovery')),
    payload    jsonb       NOT NULL,
    created_at timestamptz NOT NULL
);

-- Alert deliveries: the outbox, one row per alert and webhook. Rows are written in the same
-- transaction as the alert, so an alert is never lost between the decision and the sending.
-- The key is an increasing number from a sequence because the deliveries of one webhook must
-- go out in the order they were created; a `bigserial` never runs out.
-- `state` moves from 'pending' to 'sent' or 'failed' (given up for good).
CREATE TABLE alert_deliveries (
    id              bigserial   NOT NULL PRIMARY KEY,
    alert_id        uuid        NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    webhook_id      uuid        NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    state           text        NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_error      text,
    created_at      timestamptz NOT NULL,
    sent_at         timestamptz
);

-- Serves every read of the outbox, each of which names a webhook and a state: the next
-- pending delivery of a webhook is the first entry for (webhook_id, 'pending'); whether a
-- webhook has pending deliveries, and how many are pending in all, are answered webhook by
-- webhook from it, so done deliveries are never scanned however long the history grows. It
-- also keeps the cascade from a deleted webhook from scanning the whole table.
CREATE INDEX alert_deliveries_by_webhook ON alert_deliveries (webhook_id, state, id);

-- Small counters, one row each, keyed by name. `monitors_version` is increased in the same
-- transaction as every insert, update and delete of a monitor, so that a scheduler can poll
-- one row to learn whether it must reload the monitors (the same transaction also sends a
-- notification on the `upwatch_monitors` channel, for schedulers that listen instead).
CREATE TABLE meta (
    key   text   NOT NULL PRIMARY KEY,
    value bigint NOT NULL
);

INSERT INTO meta (key, value) VALUES ('monitors_version', 0);
