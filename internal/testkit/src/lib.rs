//! Real HTTP servers on loopback for upwatch's tests, never mocked functions.
//!
//! - [`target`]: a site to monitor, whose behaviour each test can switch at run time.
//! - [`discord`]: a Discord-compatible webhook receiver that records every message and can be
//!   told to answer 429, 5xx or 404.
//! - [`wait`]: waiting on a condition with a deadline.
//! - [`postgres`]: dropping a test's database from a `Drop`.
//! - [`tls`]: TLS and plain TCP servers with `rcgen` certificates (valid, expiring, expired,
//!   from an unknown CA), and servers that upgrade to TLS after an SMTP, IMAP or PostgreSQL
//!   preamble (STARTTLS).
//! - [`dns`]: a DNS server on loopback UDP with fixed records.
//! - [`every_type`]: one server of each of the above, for tests with a monitor of every type.
//! - [`alerts`]: the alerts that the notifier tests send (down, recovery, reminder, storm).
//! - [`proxy`]: a forward proxy (HTTP, `CONNECT` and SOCKS5) that records what went through.

pub mod alerts;
pub mod discord;
pub mod dns;
pub mod every_type;
pub mod postgres;
pub mod proxy;
pub mod receiver;
pub mod smtp;
pub mod target;
pub mod tls;
pub mod wait;
