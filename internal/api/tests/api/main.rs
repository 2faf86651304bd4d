//! Integration tests of the API: the real router over a real SQLite store, one test binary.

mod auth;
mod bulk;
mod errors;
mod health;
mod helpers;
mod history;
mod sites;
mod status;
mod webhooks;
