-- Notification channels of every kind (issue 13): a webhook row is now a channel ("notifier")
-- with a `kind` (discord, slack, email...), its provider's `settings` (JSON; secrets
-- included, as the Discord URL always was) and its `options` (JSON: default, groups,
-- reminder_interval_seconds, group_alerts). Rows from before are Discord channels that
-- receive the alerts of monitors naming none, as they did.
ALTER TABLE webhooks ADD COLUMN kind TEXT NOT NULL DEFAULT 'discord';
ALTER TABLE webhooks ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
ALTER TABLE webhooks ADD COLUMN options TEXT NOT NULL DEFAULT '{"default":true}';

-- Reminders: an alert may now be of kind 'reminder' ("still down for 1h 0m"), and names the
-- incident it belongs to (`incident_id`), so that the incident counts it in `alerts_sent`.
--
-- SQLite cannot change a CHECK constraint in place, so `alerts` is rebuilt as in migration
-- 0003: the deliveries are kept aside and put back, with their ids, once the new table
-- carries the name that their references use.
CREATE TABLE alerts_new (
    id          BLOB    NOT NULL PRIMARY KEY,
    monitor_id  BLOB    NOT NULL,
    kind        TEXT    NOT NULL
                CHECK (kind IN ('down', 'recovery', 'certificate_expiry', 'reminder')),
    payload     TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    incident_id BLOB
) STRICT;

INSERT INTO alerts_new (id, monitor_id, kind, payload, created_at)
    SELECT id, monitor_id, kind, payload, created_at FROM alerts;

CREATE TEMP TABLE deliveries_kept AS SELECT * FROM alert_deliveries;

DROP TABLE alerts;

ALTER TABLE alerts_new RENAME TO alerts;

INSERT INTO alert_deliveries
    (id, alert_id, webhook_id, state, attempts, next_attempt_at, last_error, created_at, sent_at)
    SELECT id, alert_id, webhook_id, state, attempts, next_attempt_at, last_error, created_at, sent_at
    FROM deliveries_kept;

DROP TABLE deliveries_kept;

-- An incident's reminders, for counting them.
CREATE INDEX alerts_by_incident ON alerts (incident_id) WHERE incident_id IS NOT NULL;

-- The storm detector counts a channel's deliveries queued in the last window.
CREATE INDEX alert_deliveries_by_webhook_time ON alert_deliveries (webhook_id, created_at);
