//! Integration tests of the API: the real router over a real SQLite store, one test binary.

mod auth;
mod badges;
mod bulk;
mod check_types;
mod errors;
mod health;
mod helpers;
mod history;
mod incidents;
mod maintenances;
mod notifiers;
mod openapi;
mod regions;
mod response_times;
mod sites;
mod status;
mod uptime;
mod webhooks;
