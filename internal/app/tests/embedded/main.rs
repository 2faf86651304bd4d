//! End-to-end tests of the embedded mode: the real application on port 0, real loopback
//! target sites and a real loopback Discord receiver. One test binary, several modules.

mod check_types;
mod connectivity;
mod disk_full;
mod helpers;
mod history;
mod import;
mod lifecycle;
mod monitoring;
mod notifiers;
