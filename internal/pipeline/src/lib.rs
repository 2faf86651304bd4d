//! The roles of the pipeline, each a long-running task over the IO traits:
//!
//! ```text
//! scheduler --jobs--> worker pool --results--+--> logger        (store: history)
//!                                            +--> cache updater (cache: live status)
//!                                            +--> alerter       (store: state + outbox)
//! ```
//!
//! - [`scheduler`]: emits each enabled monitor's due checks at a fixed rate, and a first check
//!   at once for monitors just created, resumed or pointed elsewhere.
//! - [`watchdog`]: runs beside the scheduler and marks monitors without results for too long
//!   `stale`, counts them, reports not-ready and tells the webhooks once per burst.
//! - [`worker`]: a bounded pool that performs checks and publishes results.
//! - [`logger`]: batches results into the store.
//! - [`pruner`]: deletes history older than its retention, a few monitors at a time.
//! - [`cache_updater`]: runs the state machine over the cached live status.
//! - [`alerter`]: runs the state machine in the store and wakes the alert dispatcher.
//!
//! A role never panics on IO failure: it logs, backs off ([`retry`]) and tries again, so a
//! dependency that goes away pauses the pipeline without losing results.
//!
//! Result consumers run until their subscription ends (the bus is closed at shutdown, after the
//! workers are done), so everything produced is consumed before the process exits.

pub mod alerter;
pub mod cache_updater;
pub mod clock;
pub mod connectivity;
pub mod consume;
pub mod logger;
pub mod pruner;
pub mod retry;
pub mod scheduler;
pub mod watchdog;
pub mod worker;
