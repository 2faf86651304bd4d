//! Running upwatch: [`Application`] wires the stores, the bus, the roles and the API into one
//! process, and [`cli`] is the command line of the `upwatch` binary.
//!
//! Start-up order matters and is kept in one place ([`Application::build`] then
//! [`Application::run_until_stopped`]): storage first, then configured webhooks and seeded
//! sites, then the cache is warmed, consumers subscribe before the scheduler publishes, and
//! shutdown runs the pipeline dry from the scheduler to the alert dispatcher.

pub mod cli;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use upwatch_api::ApiState;
use upwatch_bus::{groups, Bus, InProcessBus, Topic};
use upwatch_cache::{LiveStatus, MemoryCache, StatusCache};
use upwatch_checker::{Checker, CheckerConfig};
use upwatch_config::{DatabaseUrl, Settings};
use upwatch_core::{redact_url, Monitor, MonitorInput, MonitorState, Webhook, WebhookSource};
use upwatch_notify::{DiscordNotifier, Dispatcher, RetryPolicy};
use upwatch_pipeline::alerter::Alerter;
use upwatch_pipeline::cache_updater::CacheUpdater;
use upwatch_pipeline::logger::Logger;
use upwatch_pipeline::scheduler::{Scheduler, StoreMonitors};
use upwatch_pipeline::worker::WorkerPool;
use upwatch_store::{SqliteStore, Store};
use upwatch_telemetry::Metrics;

/// One embedded upwatch process: every role, the API, SQLite, the in-process bus and the
/// in-memory cache.
pub struct Application {
    listener: TcpListener,
    settings: Settings,
    store: Arc<dyn Store>,
    cache: Arc<dyn StatusCache>,
    bus: InProcessBus,
    metrics: Arc<Metrics>,
}

impl Application {
    /// Opens storage, applies configuration (webhooks, seeded sites), warms the cache and
    /// binds the listener (port 0 picks a free port; see [`Application::local_addr`]).
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let store: Arc<dyn Store> = match &settings.database_url {
            DatabaseUrl::Sqlite(url) => Arc::new(
                SqliteStore::connect(url)
                    .await
                    .with_context(|| format!("cannot open the database at DATABASE_URL={url}"))?,
            ),
            DatabaseUrl::Postgres(_) => anyhow::bail!(
                "DATABASE_URL points at PostgreSQL, which is the distributed mode; this build runs the embedded mode only (use sqlite://PATH)"
            ),
        };
        sync_config_webhooks(store.as_ref(), &settings).await?;
        seed_sites(store.as_ref(), &settings.sites_to_monitor).await?;
        let cache: Arc<dyn StatusCache> = Arc::new(MemoryCache::new());
        warm_cache(store.as_ref(), cache.as_ref()).await?;
        let listener = TcpListener::bind(settings.listen).await.with_context(|| {
            format!(
                "cannot listen on {} (UPWATCH_LISTEN or --listen)",
                settings.listen
            )
        })?;
        Ok(Application {
            listener,
            bus: InProcessBus::new(settings.queue_capacity),
            settings,
            store,
            cache,
            metrics: Metrics::new(),
        })
    }

    /// The address the API listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The port the API listens on.
    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    /// The store, for tests and tools that inspect what the process wrote.
    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// Runs every role and the API until `shutdown` is cancelled, then drains: the scheduler
    /// stops, in-flight checks finish (bounded by the drain timeout), every result is stored
    /// and applied, and due alerts are delivered (bounded by the drain timeout).
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Application {
            listener,
            settings,
            store,
            cache,
            bus,
            metrics,
        } = self;
        let bus_dyn: Arc<dyn Bus> = Arc::new(bus.clone());
        let changed = Arc::new(Notify::new());

        // Every consumer joins its group before the scheduler publishes anything.
        let jobs = bus.subscribe(Topic::Jobs, groups::WORKERS).await?;
        let for_logger = bus.subscribe(Topic::Results, groups::LOGGER).await?;
        let for_cache = bus.subscribe(Topic::Results, groups::CACHE).await?;
        let for_alerter = bus.subscribe(Topic::Results, groups::ALERTER).await?;

        let dispatcher = Dispatcher::new(
            store.clone(),
            Arc::new(DiscordNotifier::new().context("cannot build the HTTP client for Discord")?),
            metrics.clone(),
            RetryPolicy::default(),
        );
        let dispatch_waker = dispatcher.waker();
        let dispatch_stop = CancellationToken::new();
        let dispatcher =
            tokio::spawn(dispatcher.run(dispatch_stop.clone(), settings.drain_timeout));

        let logger = tokio::spawn(
            Logger {
                store: store.clone(),
                metrics: metrics.clone(),
                batch_size: settings.logger_batch_size,
                batch_wait: settings.logger_batch_wait,
            }
            .run(for_logger),
        );
        let cache_updater = tokio::spawn(
            CacheUpdater {
                cache: cache.clone(),
            }
            .run(for_cache),
        );
        let alerter = tokio::spawn(
            Alerter {
                store: store.clone(),
                dispatch: dispatch_waker,
            }
            .run(for_alerter),
        );
        let checker = Checker::new(CheckerConfig {
            max_body_bytes: settings.check_max_body_bytes,
            max_redirects: settings.check_max_redirects,
            ..CheckerConfig::default()
        })
        .context("cannot build the HTTP client for checks")?;
        let workers = tokio::spawn(
            WorkerPool {
                bus: bus_dyn.clone(),
                checker,
                metrics: metrics.clone(),
                concurrency: settings.workers,
                drain_timeout: settings.drain_timeout,
            }
            .run(jobs, shutdown.clone()),
        );
        let scheduler = tokio::spawn(
            Scheduler {
                source: Arc::new(StoreMonitors(store.clone())),
                bus: bus_dyn.clone(),
                metrics: metrics.clone(),
                reload_every: settings.scheduler_reload,
                changed: changed.clone(),
            }
            .run(shutdown.clone()),
        );
        let gauges = tokio::spawn({
            let (bus, metrics, shutdown) = (bus.clone(), metrics.clone(), shutdown.clone());
            async move {
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tick.tick() => {
                            metrics.queue_depth.set(bus.depth(Topic::Jobs, groups::WORKERS) as i64);
                        }
                    }
                }
            }
        });

        let state = ApiState {
            store: store.clone(),
            cache: cache.clone(),
            metrics: metrics.clone(),
            api_token: settings.api_token.clone(),
            monitors_changed: changed,
            max_body_bytes: settings.api_max_body_bytes,
        };
        let addr = listener.local_addr()?;
        let api = axum::serve(listener, upwatch_api::router(state))
            .with_graceful_shutdown(shutdown.clone().cancelled_owned());
        let mut api = tokio::spawn(async move { api.await });
        tracing::info!(listen = %addr, url = %format!("http://{addr}/api/v1/status"), "upwatch is running");

        let api_result = tokio::select! {
            _ = shutdown.cancelled() => None,
            result = &mut api => {
                shutdown.cancel();
                Some(result)
            }
        };
        tracing::info!("shutting down: stopping the scheduler and draining in-flight checks");
        let _ = scheduler.await;
        bus.close(Topic::Jobs).await;
        let _ = workers.await;
        bus.close(Topic::Results).await;
        let _ = tokio::join!(logger, cache_updater, alerter);
        tracing::info!("results stored; delivering due alerts");
        dispatch_stop.cancel();
        let _ = dispatcher.await;
        let _ = gauges.await;
        let api_result = match api_result {
            Some(result) => result,
            None => api.await,
        };
        api_result
            .context("the API task failed")?
            .context("the API server failed")?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Makes the stored configured webhooks match `DISCORD_WEBHOOK_URL`: adds new ones, removes
/// those no longer configured. Webhooks created through the API are left alone.
async fn sync_config_webhooks(store: &dyn Store, settings: &Settings) -> anyhow::Result<()> {
    let mut wanted = Vec::new();
    for (i, url) in settings.discord_webhook_urls.iter().enumerate() {
        let url = url.expose_secret().to_string();
        let webhook = Webhook {
            id: Webhook::config_id(&url),
            name: format!("DISCORD_WEBHOOK_URL #{}", i + 1),
            url,
            enabled: true,
            disabled_reason: None,
            source: WebhookSource::Config,
            created_at: Utc::now(),
        };
        store
            .upsert_webhook(&webhook)
            .await
            .context("cannot store the configured webhooks")?;
        tracing::info!(webhook = %redact_url(&webhook.url), id = %webhook.id, "webhook configured");
        wanted.push(webhook.id);
    }
    for stale in store
        .list_webhooks()
        .await?
        .into_iter()
        .filter(|w| w.source == WebhookSource::Config && !wanted.contains(&w.id))
    {
        store.delete_webhook(stale.id).await?;
        tracing::info!(webhook = %redact_url(&stale.url), "webhook no longer configured; removed");
    }
    Ok(())
}

/// Adds each `SITES_TO_MONITOR` URL that no monitor watches yet, with default settings.
async fn seed_sites(store: &dyn Store, sites: &[String]) -> anyhow::Result<()> {
    for site in sites {
        let monitor = Monitor::create(MonitorInput::for_url(site), Utc::now())
            .map_err(|e| anyhow::anyhow!("SITES_TO_MONITOR: {e}"))?;
        if store.find_monitor_by_url(&monitor.url).await?.is_none() {
            store.insert_monitor(&monitor).await?;
            tracing::info!(url = %monitor.url, id = %monitor.id, "site from SITES_TO_MONITOR added");
        }
    }
    Ok(())
}

/// Loads every monitor's stored state into the live-status cache.
async fn warm_cache(store: &dyn Store, cache: &dyn StatusCache) -> anyhow::Result<()> {
    let states: std::collections::HashMap<_, _> = store
        .list_states()
        .await?
        .into_iter()
        .map(|s| (s.monitor_id, s))
        .collect();
    for monitor in store.all_monitors().await? {
        let state = states
            .get(&monitor.id)
            .cloned()
            .unwrap_or_else(|| MonitorState::new(monitor.id));
        cache.put(&LiveStatus::new(&monitor, state)).await?;
    }
    Ok(())
}
