//! The life of `aplo serve`: start everything, serve until SIGTERM or
//! SIGINT, stop within a bound; and `--api-only`, the REST API alone.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Api;
use kube::runtime::{WatchStreamExt, reflector, watcher};

use super::super::Config;
use super::super::engine::runtime;
use super::open::{client, leader_usage, open_engine, spawn_tls};
use super::{ServeArgs, seconds};
use crate::front::{Metrics, Phase, Status};
use crate::http::admission::{self, AdmissionOptions, AdmissionState};
use crate::http::control::{AdminGate, LogControl};
use crate::http::{self, ApiConfig, HttpState};
use crate::kube::ServeOptions;
use crate::policy::Registry;

/// Resolves once shutdown is asked; every task that must stop holds a clone.
pub(in crate::cli) type Stop = futures::future::Shared<futures::future::BoxFuture<'static, ()>>;

/// Resolves on SIGTERM or SIGINT. The handlers are installed now (inside
/// the runtime), so that a signal that comes early is not missed.
pub(in crate::cli) fn shutdown_signal() -> anyhow::Result<Stop> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing a SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing a SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
    }
    .boxed()
    .shared())
}

/// After shutdown is asked, how long the process may take to stop cleanly
/// (reconciles finishing, the pod's label, the lease handed back) before it
/// exits regardless.
const EXIT_WITHIN: Duration = Duration::from_secs(
    crate::kube::STOP_GRACE.as_secs() + 2 * crate::kube::ROLE_CALL_BOUND.as_secs() + 1,
);

/// How long the exit waits for blocking threads (a policy decision under
/// way, a name lookup): they are abandoned, not waited for.
const BLOCKING_WAIT: Duration = Duration::from_millis(500);

/// Run `aplo serve`; `logging` (the installed log filter) lets the REST
/// API change the log level.
pub fn run(
    config: &Config,
    args: ServeArgs,
    logging: Option<Arc<dyn LogControl>>,
) -> anyhow::Result<ExitCode> {
    let options = args.options()?;
    let api = args.api(logging)?;
    let answer_within = seconds("admission-timeout", args.admission_timeout)?;
    // Loaded now, so that a bad policy directory fails before any lease;
    // the webhook and the engine share these compiled policies.
    let registry = config.open_registry()?;
    // A changed policy file is loaded (or rejected, keeping the previous
    // version) without a restart; the webhook and the engine share it.
    let policy_watch = registry.watch(Duration::from_secs(args.policy_reload_interval.max(1)));
    let runtime = runtime()?;
    let result = runtime.block_on(async {
        let stop = shutdown_signal()?;
        // Whatever is under way when shutdown comes has EXIT_WITHIN to end
        // cleanly; then the process exits regardless.
        let exit_anyway = {
            let stop = stop.clone();
            async move {
                stop.await;
                tokio::time::sleep(EXIT_WITHIN).await;
            }
        };
        tokio::select! {
            result = serve(config, &args, options, api, answer_within, registry, stop) => result,
            () = exit_anyway => {
                tracing::warn!(within = ?EXIT_WITHIN, "still stopping; exiting anyway");
                Ok(ExitCode::SUCCESS)
            }
        }
    });
    runtime.shutdown_timeout(BLOCKING_WAIT);
    // Stop watching the policy directory without waiting for a rescan under
    // way (a large module may take seconds to compile).
    std::thread::spawn(move || drop(policy_watch));
    result
}

/// Everything `aplo serve` runs, until `stop` resolves.
async fn serve(
    config: &Config,
    args: &ServeArgs,
    options: ServeOptions,
    api: Option<ApiConfig>,
    answer_within: Duration,
    registry: Arc<Registry>,
    stop: Stop,
) -> anyhow::Result<ExitCode> {
    let metrics = Arc::new(Metrics::new());
    metrics.add_policies(registry.runtime().metrics());
    let status = Arc::new(Status::default());
    let mode = api.as_ref().map(|api| api.control.mode.clone());
    let mut state = HttpState::new(metrics.clone(), status.clone());
    if let Some(api) = api {
        state = state.with_api(api);
    }
    if args.api_only {
        return api_only(config, args, registry, state, mode, stop).await;
    }
    // Reading the configuration may run a credential plugin: not past a
    // shutdown.
    let client = tokio::select! {
        client = client(args.kubeconfig.as_ref()) => client?,
        () = stop.clone() => return Ok(ExitCode::SUCCESS),
    };
    let (classes, class_writer) = reflector::store::<StorageClass>();
    let class_watch = tokio::spawn(
        reflector::reflector(
            class_writer,
            watcher(
                Api::<StorageClass>::all(client.clone()),
                watcher::Config::default(),
            ),
        )
        .default_backoff()
        .for_each(|_| async {}),
    );
    let admission = AdmissionState::new(
        registry.clone(),
        Arc::new(classes),
        leader_usage(status.clone()),
        AdmissionOptions {
            provisioner: args.provisioner_name.clone(),
            failure_policy: args.admission_failure_policy,
            answer_within,
        },
    );
    let state = state.with_routes(admission::router(admission));
    let tls = spawn_tls(args, http::router(state.clone())).await?;
    let (addr, http) = http::bind(args.listen, state)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    tracing::info!(%addr, provisioner = %args.provisioner_name, "serving HTTP");
    let http = tokio::spawn(http);
    let result = crate::kube::serve(
        client,
        || open_engine(config, args, registry, mode),
        options,
        metrics,
        status,
        stop,
    )
    .await;
    http.abort();
    class_watch.abort();
    if let Some(tls) = tls {
        tls.abort();
    }
    result.map(|()| ExitCode::SUCCESS)
}

/// `aplo serve --api-only`: open the store at once and serve the REST API
/// until SIGTERM.
async fn api_only(
    config: &Config,
    args: &ServeArgs,
    registry: Arc<Registry>,
    state: HttpState,
    mode: Option<Arc<AdminGate>>,
    stop: Stop,
) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        state.api.is_some(),
        "--api-only serves the REST API: give --admin-key (and --user-key), or --no-auth for development"
    );
    let state = state.without_controller();
    let status = state.status.clone();
    let tls = spawn_tls(args, http::router(state.clone())).await?;
    let (addr, http) = http::bind(args.listen, state)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let http = tokio::spawn(http);
    status.enter(Phase::Recovering);
    // An interrupted recovery is finished by the next start, as after a
    // crash: shutdown does not wait for it.
    let opened = async {
        let engine = open_engine(config, args, registry, mode).await?;
        let recovered = engine.recover().await?;
        anyhow::Ok((engine, recovered))
    };
    let (engine, recovered) = tokio::select! {
        opened = opened => opened?,
        () = stop.clone() => {
            http.abort();
            if let Some(tls) = tls {
                tls.abort();
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    tracing::info!(?recovered, "store recovered");
    let health = engine.watch_health(Duration::from_secs(5));
    status.set_engine(Some(engine));
    status.enter(Phase::Leading);
    tracing::info!(%addr, "serving the REST API (no Kubernetes controller)");
    stop.await;
    status.enter(Phase::Stopped);
    status.set_engine(None);
    health.abort();
    http.abort();
    if let Some(tls) = tls {
        tls.abort();
    }
    Ok(ExitCode::SUCCESS)
}
