-- Maintenance windows: planned work that pages nobody and does not count against uptime.

-- A result checked during a maintenance window of its monitor: stored as any other, shown as
-- such, and left out of the rollups (neither up nor down).
ALTER TABLE results ADD COLUMN maintenance INTEGER NOT NULL DEFAULT 0 CHECK (maintenance IN (0, 1));

-- The windows, each kept whole as JSON in `spec` (upwatch_core::maintenance::Maintenance),
-- like monitors: what they cover and when is read and judged by the core, never by SQL.
CREATE TABLE maintenances (
    id         BLOB    NOT NULL PRIMARY KEY,
    spec       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
