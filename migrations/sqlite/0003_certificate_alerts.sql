-- Certificate expiry alerts: an alert may now be of kind 'certificate_expiry' (a monitor's
-- certificate crossed an expiry threshold; the site is still up, so no incident opens).
--
-- SQLite cannot change a CHECK constraint in place, so `alerts` is rebuilt. Foreign keys stay
-- on (migrations run in a transaction, where they cannot be switched off), so dropping the old
-- table cascades into `alert_deliveries`: the deliveries are kept aside first and put back,
-- with their ids, once the new table carries the name that their references use.
CREATE TABLE alerts_new (
    id         BLOB    NOT NULL PRIMARY KEY,
    monitor_id BLOB    NOT NULL,
    kind       TEXT    NOT NULL CHECK (kind IN ('down', 'recovery', 'certificate_expiry')),
    payload    TEXT    NOT NULL,
    created_at INTEGER NOT NULL
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
