//! The service layer: upwatch's use cases, each written once, over the ports.
//!
//! - [`monitors`]: creating (one or in bulk), changing, pausing, resuming and deleting
//!   monitors, where the store, the live-status cache and the scheduler's notice go together;
//!   seeding from `SITES_TO_MONITOR` and warming the cache. The API, YAML import and seeding
//!   all go through it.
//! - [`maintenances`]: creating, changing and deleting maintenance windows, checked against
//!   the monitors and groups they name, with the scheduler told at once.
//! - [`push`]: recording the pushes of push (heartbeat) monitors as results, rate-limited per
//!   monitor.
//! - [`stats`]: uptime over a window with one definition and one memo, shared by the API's
//!   status endpoints, the badges and the pages, so that they show the same figure.
//!
//! Architecture invariant: this crate sees ports only (`upwatch-store`, `upwatch-cache`),
//! never a driver, and no HTTP; it publishes onto the bus port (`upwatch-bus`) for pushes: the API and the pages translate its results to their forms.

pub mod maintenances;
pub mod monitors;
pub mod push;
pub mod stats;

pub use maintenances::{MaintenanceError, MaintenanceService, Targets};
pub use monitors::{CheckedBy, MonitorService};
pub use push::{Push, PushError, PushService, Recorded};
pub use stats::{Counts, Stats};
