//! Real HTTP servers on loopback for upwatch's tests, never mocked functions.
//!
//! - [`target`]: a site to monitor, whose behaviour each test can switch at run time.
//! - [`discord`]: a Discord-compatible webhook receiver that records every message and can be
//!   told to answer 429, 5xx or 404.
//! - [`wait`]: waiting on a condition with a deadline.
//! - [`postgres`]: dropping a test's database from a `Drop`.

pub mod discord;
pub mod postgres;
pub mod target;
pub mod wait;
