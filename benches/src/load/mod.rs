//! The parts of the end-to-end load benchmark: a loopback target server (and, per check type,
//! the loopback TCP, TLS and DNS servers), the upwatch processes under test, what is read from
//! them (`/metrics`, `/proc`), a keep-alive load generator for the live-status API, and the
//! report.

pub mod apiload;
pub mod fleet;
pub mod limit;
pub mod procfs;
pub mod prom;
pub mod report;
pub mod sites;
pub mod target;
