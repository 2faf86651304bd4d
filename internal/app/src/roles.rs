//! The role supervisor: each role is started by one small function that returns the tasks it
//! runs, each with the shutdown phase it ends in; leadership of the jobs that must run once in
//! a fleet is a [`Leadership`]; start-up is a loop over the roles in [`START_ORDER`] and the
//! drain a loop over the [`Phase`]s.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use secrecy::ExposeSecret;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use upwatch_bus::{groups, Bus, InProcessBus, Subscription, Topic};
use upwatch_cache::StatusCache;
use upwatch_checker::connectivity::Connectivity;
use upwatch_checker::{Checker, CheckerConfig};
use upwatch_config::Settings;
use upwatch_notifiers::Channels;
use upwatch_notify::{Dispatcher, Notifier, Reminders, RetryPolicy, StormPolicy};
use upwatch_pipeline::alerter::Alerter;
use upwatch_pipeline::cache_updater::CacheUpdater;
use upwatch_pipeline::connectivity::ConnectivityWatch;
use upwatch_pipeline::consume::Batching;
use upwatch_pipeline::logger::Logger;
use upwatch_pipeline::pruner::Pruner;
use upwatch_pipeline::scheduler::{Scheduler, StoreMonitors};
use upwatch_pipeline::watchdog::{Announce, Watchdog, WebhookAnnouncer};
use upwatch_pipeline::worker::WorkerPool;
use upwatch_store::Store;
use upwatch_store_sql::postgres::LeaderLock;
use upwatch_telemetry::Metrics;

use crate::Role;

/// The PostgreSQL advisory lock key that elects the one active scheduler ("upwatch" in ASCII).
pub const SCHEDULER_LOCK_KEY: i64 = 0x0075_7077_6174_6368;
/// The lock key that elects the one alerter process that delivers the outbox, so that two
/// alerters never send the same delivery.
pub const DISPATCHER_LOCK_KEY: i64 = SCHEDULER_LOCK_KEY + 1;
/// The advisory lock that elects the one logger that prunes old history.
pub const PRUNER_LOCK_KEY: i64 = SCHEDULER_LOCK_KEY + 2;

/// How often the watchdog judges every monitor.
const WATCHDOG_EVERY: Duration = Duration::from_secs(1);
/// How often the watchdog samples the workers' lag on the jobs topic.
const WATCHDOG_LAG_EVERY: Duration = Duration::from_secs(5);

/// The order roles start in: every consumer joins its group before the scheduler publishes
/// anything. (The API has no task of its own here: it is the HTTP listener.)
pub const START_ORDER: [Role; 5] = [
    Role::Alerter,
    Role::Logger,
    Role::CacheUpdater,
    Role::Worker,
    Role::Scheduler,
];

/// When a task ends during shutdown, in drain order: the pipeline runs dry from the scheduler
/// to the alert dispatcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// The scheduler stops emitting (it watches the process's shutdown).
    Schedule,
    /// In-flight checks finish, bounded by the drain timeout; then the bus closes.
    Check,
    /// The results consumers store and apply every result received, then end as the bus is
    /// closed.
    Consume,
    /// Due alerts are delivered, bounded by the drain timeout: the dispatcher's own stop is
    /// cancelled only now, once every result has been applied.
    Deliver,
    /// Housekeeping (pruning, gauges), which watches the process's shutdown.
    Background,
}

impl Phase {
    pub const ORDER: [Phase; 5] = [
        Phase::Schedule,
        Phase::Check,
        Phase::Consume,
        Phase::Deliver,
        Phase::Background,
    ];
}

/// A task a role started.
pub struct Running {
    pub role: &'static str,
    pub phase: Phase,
    pub task: JoinHandle<()>,
    /// Cancelled when the task's phase begins, for a task that must outlive the process's
    /// shutdown signal (the dispatcher); `None` for tasks that watch that signal themselves
    /// or end when the bus closes.
    pub stop: Option<CancellationToken>,
}

/// What starts a leader's job: given the token that ends it, spawns it.
pub type Start = Box<dyn Fn(CancellationToken) -> JoinHandle<()> + Send + Sync>;

/// Who runs a job that must run once in the whole fleet (the scheduler, the dispatcher, the
/// pruner).
#[async_trait]
pub trait Leadership: Send + Sync + 'static {
    /// Runs what `start` spawns while this process leads `what`, standing by otherwise;
    /// returns once `stop` is cancelled and the job started has ended.
    async fn lead(&self, key: i64, what: &'static str, stop: CancellationToken, start: Start);
}

/// The embedded mode: one process, always the leader.
pub struct AlwaysLeader;

#[async_trait]
impl Leadership for AlwaysLeader {
    async fn lead(&self, _key: i64, _what: &'static str, stop: CancellationToken, start: Start) {
        let _ = start(stop).await;
    }
}

/// The distributed mode: the holder of a PostgreSQL advisory lock leads; the others stand by
/// and take over within about a second of the holder's session ending.
pub struct AdvisoryLock {
    pub url: String,
}

#[async_trait]
impl Leadership for AdvisoryLock {
    async fn lead(&self, key: i64, what: &'static str, shutdown: CancellationToken, start: Start) {
        let mut failures = 0u32;
        let mut standing_by = false;
        loop {
            let attempt = tokio::select! {
                _ = shutdown.cancelled() => return,
                attempt = LeaderLock::try_acquire(&self.url, key) => attempt,
            };
            match attempt {
                Ok(Some(mut lock)) => {
                    failures = 0;
                    standing_by = false;
                    tracing::info!(role = what, "this {what} is the leader");
                    let stop = CancellationToken::new();
                    let task = start(stop.clone());
                    tokio::select! {
                        _ = lock.lost() => tracing::warn!(role = what, "leadership lost; standing by"),
                        _ = shutdown.cancelled() => {}
                    }
                    stop.cancel();
                    let _ = task.await;
                    lock.release().await;
                    if shutdown.is_cancelled() {
                        return;
                    }
                }
                Ok(None) => {
                    if !standing_by {
                        tracing::info!(role = what, "another {what} is the leader; standing by");
                        standing_by = true;
                    }
                }
                Err(error) => {
                    failures += 1;
                    tracing::warn!(role = what, %error, attempt = failures, "cannot take part in the election; retrying");
                }
            }
            let wait = Duration::from_millis(1000 * u64::from(failures.clamp(1, 10)));
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// What the roles of one process are started from.
pub struct Wiring<'a> {
    pub settings: &'a Settings,
    pub store: Option<Arc<dyn Store>>,
    pub cache: Option<Arc<dyn StatusCache>>,
    pub bus: Option<Arc<dyn Bus>>,
    pub metrics: Arc<Metrics>,
    pub leadership: Arc<dyn Leadership>,
    /// Cancelled when the process shuts down.
    pub shutdown: CancellationToken,
    /// Poked after every monitor write, so that the scheduler reloads at once.
    pub changed: Arc<Notify>,
    /// The notification channels (their HTTP client), shared by the dispatcher, the API's
    /// test messages and the watchdog; made by the first role that needs it.
    notifier: OnceLock<Arc<dyn Notifier>>,
}

impl<'a> Wiring<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        settings: &'a Settings,
        store: Option<Arc<dyn Store>>,
        cache: Option<Arc<dyn StatusCache>>,
        bus: Option<Arc<dyn Bus>>,
        metrics: Arc<Metrics>,
        leadership: Arc<dyn Leadership>,
        shutdown: CancellationToken,
        changed: Arc<Notify>,
    ) -> Wiring<'a> {
        Wiring {
            settings,
            store,
            cache,
            bus,
            metrics,
            leadership,
            shutdown,
            changed,
            notifier: OnceLock::new(),
        }
    }

    pub fn store(&self, role: Role) -> anyhow::Result<Arc<dyn Store>> {
        self.store
            .clone()
            .with_context(|| format!("the {} role needs a store", role.name()))
    }

    pub fn cache(&self, role: Role) -> anyhow::Result<Arc<dyn StatusCache>> {
        self.cache
            .clone()
            .with_context(|| format!("the {} role needs a cache", role.name()))
    }

    pub fn bus(&self, role: Role) -> anyhow::Result<Arc<dyn Bus>> {
        self.bus
            .clone()
            .with_context(|| format!("the {} role needs a bus", role.name()))
    }

    /// Joins `group` on `topic` for `role`.
    async fn subscribe(
        &self,
        role: Role,
        topic: Topic,
        group: &str,
    ) -> anyhow::Result<Box<dyn Subscription>> {
        self.bus(role)?
            .subscribe(topic, group)
            .await
            .with_context(|| format!("cannot join the consumer group {group}"))
    }

    /// The notification channels of every kind, made on first use.
    pub fn notifier(&self) -> anyhow::Result<Arc<dyn Notifier>> {
        Ok(self
            .notifier
            .get_or_init(|| Arc::new(Channels::default()))
            .clone())
    }

    /// A job that runs once in the fleet, under [`Wiring::leadership`], until `stop`.
    fn led(
        &self,
        key: i64,
        what: &'static str,
        stop: CancellationToken,
        start: Start,
    ) -> JoinHandle<()> {
        let leadership = self.leadership.clone();
        tokio::spawn(async move { leadership.lead(key, what, stop, start).await })
    }

    /// Starts `role`'s tasks.
    pub async fn start(&self, role: Role) -> anyhow::Result<Vec<Running>> {
        match role {
            Role::Alerter => self.alerter().await,
            Role::Logger => self.logger().await,
            Role::CacheUpdater => self.cache_updater().await,
            Role::Worker => self.workers().await,
            Role::Scheduler => self.scheduler(),
            Role::Api => Ok(Vec::new()),
        }
    }

    /// The alerter: applies results to the state machines, and (one per fleet) delivers the
    /// outbox, woken by every batch that made alerts.
    async fn alerter(&self) -> anyhow::Result<Vec<Running>> {
        let sub = self
            .subscribe(Role::Alerter, Topic::Results, groups::ALERTER)
            .await?;
        let store = self.store(Role::Alerter)?;
        let waker = Arc::new(Notify::new());
        let stop = CancellationToken::new();
        let start: Start = {
            let (store, notifier, metrics, waker, drain) = (
                store.clone(),
                self.notifier()?,
                self.metrics.clone(),
                waker.clone(),
                self.settings.drain_timeout,
            );
            let storms = StormPolicy {
                threshold: self.settings.alert_group_threshold,
                window: self.settings.alert_group_window,
                dashboard_url: self.settings.public_url.as_ref().map(|u| format!("{u}/")),
            };
            Box::new(move |stop: CancellationToken| {
                let dispatcher = Dispatcher::new(
                    store.clone(),
                    notifier.clone(),
                    metrics.clone(),
                    RetryPolicy::default(),
                )
                .with_storms(storms.clone())
                .with_waker(waker.clone());
                // Reminders are decided where the outbox is delivered: once in the fleet.
                let reminders = Reminders::new(store.clone(), waker.clone());
                tokio::spawn(async move {
                    tokio::join!(dispatcher.run(stop.clone(), drain), reminders.run(stop));
                })
            })
        };
        let dispatcher = self.led(DISPATCHER_LOCK_KEY, "alert dispatcher", stop.clone(), start);
        let alerter = Alerter {
            store,
            dispatch: waker,
            batching: Batching {
                size: self.settings.alerter_batch_size,
                wait: self.settings.alerter_batch_wait,
            },
        };
        Ok(vec![
            Running {
                role: "alerter",
                phase: Phase::Consume,
                task: tokio::spawn(alerter.run(sub)),
                stop: None,
            },
            Running {
                role: "alert dispatcher",
                phase: Phase::Deliver,
                task: dispatcher,
                stop: Some(stop),
            },
        ])
    }

    /// The logger: stores results in batches, and (one per fleet) prunes old history.
    async fn logger(&self) -> anyhow::Result<Vec<Running>> {
        let sub = self
            .subscribe(Role::Logger, Topic::Results, groups::LOGGER)
            .await?;
        let store = self.store(Role::Logger)?;
        let logger = Logger {
            store: store.clone(),
            metrics: self.metrics.clone(),
            batch_size: self.settings.logger_batch_size,
            batch_wait: self.settings.logger_batch_wait,
        };
        let pruner = Pruner {
            store,
            metrics: self.metrics.clone(),
            retention: self.settings.retention,
            every: self.settings.prune_interval,
            batch_monitors: self.settings.prune_batch_monitors,
        };
        let pruning = self.led(
            PRUNER_LOCK_KEY,
            "pruner",
            self.shutdown.clone(),
            Box::new(move |stop| tokio::spawn(pruner.clone().run(stop))),
        );
        Ok(vec![
            Running {
                role: "logger",
                phase: Phase::Consume,
                task: tokio::spawn(logger.run(sub)),
                stop: None,
            },
            Running {
                role: "pruner",
                phase: Phase::Background,
                task: pruning,
                stop: None,
            },
        ])
    }

    /// The cache updater: writes each result's live status to the cache.
    async fn cache_updater(&self) -> anyhow::Result<Vec<Running>> {
        let sub = self
            .subscribe(Role::CacheUpdater, Topic::Results, groups::CACHE)
            .await?;
        let updater = CacheUpdater {
            cache: self.cache(Role::CacheUpdater)?,
            store: self.store(Role::CacheUpdater)?,
        };
        Ok(vec![Running {
            role: "cache updater",
            phase: Phase::Consume,
            task: tokio::spawn(updater.run(sub)),
            stop: None,
        }])
    }

    /// The worker pool: performs the checks of its region's jobs stream, and watches its own
    /// network when connectivity targets are set.
    async fn workers(&self) -> anyhow::Result<Vec<Running>> {
        let region = &self.settings.region;
        let sub = self
            .subscribe(Role::Worker, Topic::jobs(region), &groups::workers(region))
            .await?;
        let checker = build_checker(self.settings)?;
        let mut running = Vec::new();
        let connectivity = if self.settings.connectivity_targets.is_empty() {
            None
        } else {
            let connectivity = Connectivity::new(
                Arc::new(checker.clone()),
                region.clone(),
                self.settings.connectivity_targets.clone(),
                self.settings.connectivity_interval,
            );
            let announce: Option<Arc<dyn Announce>> = match &self.store {
                Some(store) => Some(Arc::new(WebhookAnnouncer {
                    store: store.clone(),
                    notifier: self.notifier()?,
                })),
                None => None,
            };
            let watch = ConnectivityWatch {
                region: region.clone(),
                targets: self.settings.connectivity_targets.len(),
                metrics: self.metrics.clone(),
                announce,
            };
            let stop = self.shutdown.clone();
            let verdicts = connectivity.subscribe();
            running.push(Running {
                role: "connectivity",
                phase: Phase::Background,
                task: tokio::spawn(watch.run(verdicts, stop.clone())),
                stop: None,
            });
            let probe = connectivity.clone();
            running.push(Running {
                role: "connectivity probe",
                phase: Phase::Background,
                task: tokio::spawn(async move { probe.run(stop.cancelled_owned()).await }),
                stop: None,
            });
            Some(connectivity)
        };
        let pool = WorkerPool {
            bus: self.bus(Role::Worker)?,
            checker,
            metrics: self.metrics.clone(),
            concurrency: self.settings.workers,
            drain_timeout: self.settings.drain_timeout,
            connectivity,
        };
        running.push(Running {
            role: "workers",
            phase: Phase::Check,
            task: tokio::spawn(pool.run(sub, self.shutdown.clone())),
            stop: None,
        });
        Ok(running)
    }

    /// The scheduler (one per fleet), with the watchdog inside it.
    fn scheduler(&self) -> anyhow::Result<Vec<Running>> {
        let store = self.store(Role::Scheduler)?;
        let bus = self.bus(Role::Scheduler)?;
        let watchdog = Watchdog {
            cache: self.cache(Role::Scheduler)?,
            announce: Arc::new(WebhookAnnouncer {
                store: store.clone(),
                notifier: self.notifier()?,
            }),
            metrics: self.metrics.clone(),
            stale_after_intervals: self.settings.stale_after_intervals,
            every: WATCHDOG_EVERY,
            lag_of: self.settings.kafka.as_ref().map(|_| bus.clone()),
            lag_every: WATCHDOG_LAG_EVERY,
            lag_regions: self.settings.regions.clone(),
            results: bus.clone(),
        };
        let scheduler = Scheduler {
            source: Arc::new(StoreMonitors {
                monitors: store.clone(),
                maintenances: store,
            }),
            bus,
            metrics: self.metrics.clone(),
            reload_every: self.settings.scheduler_reload,
            changed: self.changed.clone(),
            // First checks of monitors created together go out at about the pool's capacity:
            // one check per worker per second.
            first_checks_per_second: u32::try_from(self.settings.workers).unwrap_or(u32::MAX),
            watchdog: Some(watchdog),
            cert_expiry_alert_days: self.settings.cert_expiry_alert_days.clone(),
            regions: self.settings.regions.clone(),
        };
        let task = self.led(
            SCHEDULER_LOCK_KEY,
            "scheduler",
            self.shutdown.clone(),
            Box::new(move |stop| tokio::spawn(scheduler.clone().run(stop))),
        );
        Ok(vec![Running {
            role: "scheduler",
            phase: Phase::Schedule,
            task,
            stop: None,
        }])
    }
}

/// The in-process bus's queue-depth gauge, sampled every second until `shutdown`.
pub fn queue_gauge(
    bus: InProcessBus,
    region: String,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Running {
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {
                    metrics.queue_depth.set(bus.depth(Topic::jobs(&region), &groups::workers(&region)) as i64);
                }
            }
        }
    });
    Running {
        role: "queue gauge",
        phase: Phase::Background,
        task,
        stop: None,
    }
}

/// Ends every task in [`Phase::ORDER`]: a phase's tasks are stopped (where they have a stop
/// of their own) and awaited before the next phase begins; the bus closes when the checks
/// have finished, which ends the consumers once they have handled what they received.
pub async fn drain(mut running: Vec<Running>, bus: Option<&Arc<dyn Bus>>, region: &str) {
    for phase in Phase::ORDER {
        if phase == Phase::Consume {
            if let Some(bus) = bus {
                bus.close(Topic::jobs(region)).await;
                bus.close(Topic::Results).await;
            }
        }
        let (now, later): (Vec<Running>, Vec<Running>) =
            running.into_iter().partition(|r| r.phase == phase);
        running = later;
        if phase == Phase::Deliver && !now.is_empty() {
            tracing::info!("results applied; delivering due alerts");
        }
        for task in &now {
            if let Some(stop) = &task.stop {
                stop.cancel();
            }
        }
        for task in now {
            if let Err(error) = task.task.await {
                tracing::error!(role = task.role, %error, "a task ended abnormally");
            }
        }
    }
}

/// The checker the settings describe: body and redirect bounds, the per-host limit and the
/// extra trusted roots of `UPWATCH_CHECK_CA_FILE`.
pub(crate) fn build_checker(settings: &Settings) -> anyhow::Result<Checker> {
    let extra_roots = match &settings.check_ca_file {
        Some(path) => upwatch_checker::load_roots(path)
            .map_err(|e| anyhow::anyhow!("UPWATCH_CHECK_CA_FILE: {e}"))?,
        None => Vec::new(),
    };
    let checker = Checker::new(CheckerConfig {
        proxy: settings
            .check_proxy
            .as_ref()
            .map(|p| p.expose_secret().to_string()),
        max_body_bytes: settings.check_max_body_bytes,
        max_redirects: settings.check_max_redirects,
        max_per_host: settings.check_max_per_host,
        extra_roots,
        ..CheckerConfig::default()
    })
    .context("cannot build the checker")?;
    // The checker has said once, at start-up, which ICMP sockets it uses or why it has none.
    Ok(checker)
}
