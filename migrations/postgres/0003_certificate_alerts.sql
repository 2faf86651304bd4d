-- Certificate expiry alerts: an alert may now be of kind 'certificate_expiry' (a monitor's
-- certificate crossed an expiry threshold; the site is still up, so no incident opens).
ALTER TABLE alerts DROP CONSTRAINT alerts_kind_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_kind_check
    CHECK (kind IN ('down', 'recovery', 'certificate_expiry'));
