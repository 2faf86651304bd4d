//! End-to-end tests of the distributed mode: every role is a real `upwatch` process, talking
//! over a real Kafka-protocol broker, PostgreSQL and Redis (started by `deploy/test.sh`),
//! checking loopback sites and alerting a loopback Discord receiver.

mod check_types;
mod faults;
mod fleet;
mod flow;
mod maintenance;
mod outages;
mod regions;
mod watchdog;
