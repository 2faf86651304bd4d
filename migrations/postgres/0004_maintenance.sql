-- Maintenance windows: planned work that pages nobody and does not count against uptime.

-- A result checked during a maintenance window of its monitor: stored as any other, shown as
-- such, and left out of the rollups (neither up nor down). A constant default: no rewrite.
ALTER TABLE results ADD COLUMN maintenance boolean NOT NULL DEFAULT false;

-- The windows, each kept whole as JSON in `spec` (upwatch_core::maintenance::Maintenance),
-- like monitors: what they cover and when is read and judged by the core, never by SQL.
CREATE TABLE maintenances (
    id         uuid        NOT NULL PRIMARY KEY,
    spec       jsonb       NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
