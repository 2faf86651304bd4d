-- Notification channels of every kind (issue 13): a webhook row is now a channel ("notifier")
-- with a `kind` (discord, slack, email...), its provider's `settings` (secrets included, as
-- the Discord URL always was) and its `options` (default, groups, reminder_interval_seconds,
-- group_alerts). Rows from before are Discord channels that receive the alerts of monitors
-- naming none, as they did.
ALTER TABLE webhooks
    ADD COLUMN kind     text  NOT NULL DEFAULT 'discord',
    ADD COLUMN settings jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN options  jsonb NOT NULL DEFAULT '{"default": true}';

-- Reminders: an alert may now be of kind 'reminder' ("still down for 1h 0m"), and names the
-- incident it belongs to, so that the incident counts it in `alerts_sent`.
ALTER TABLE alerts DROP CONSTRAINT alerts_kind_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_kind_check
    CHECK (kind IN ('down', 'recovery', 'certificate_expiry', 'reminder'));
ALTER TABLE alerts ADD COLUMN incident_id uuid;

-- An incident's reminders, for counting them.
CREATE INDEX alerts_by_incident ON alerts (incident_id) WHERE incident_id IS NOT NULL;

-- The storm detector counts a channel's deliveries queued in the last window.
CREATE INDEX alert_deliveries_by_webhook_time ON alert_deliveries (webhook_id, created_at);
