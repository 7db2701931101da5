//! The provisioner against a real control plane (etcd, kube-apiserver,
//! kube-controller-manager and kube-scheduler built from source, see
//! [`crate::k8s`]): a world with an admin client and a client as aplo's
//! ServiceAccount under deploy/base's RBAC, helpers to make classes and
//! claims, and waits that read the outcome from objects and events.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aplo::engine::driver::SimDriver;
use aplo::engine::{Engine, EngineConfig, LoadOptions};
use aplo::front::{Metrics, Status};
use aplo::kube::{ServeOptions, Settings};
use aplo::model::storage::Backend;
use aplo::model::topology::parse_topology;
use aplo::policy::Registry;
use aplo::store::MemoryStore;
use k8s_openapi::api::core::v1::{
    Namespace, PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    VolumeResourceRequirements,
};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client, ResourceExt};

use crate::k8s::{Kubernetes, Options, client_from};

/// The provisioner name the tests use.
pub const PROVISIONER: &str = aplo::front::claim::DEFAULT_PROVISIONER;

/// aplo's namespace and ServiceAccount in deploy/base.
pub const NAMESPACE: &str = "aplo-system";
/// See [`NAMESPACE`].
pub const SERVICE_ACCOUNT: &str = "aplo";

/// A real control plane with deploy/base's namespace, ServiceAccounts,
/// RBAC and CSIDriver applied.
pub struct World {
    /// The control plane (no node).
    pub k8s: Kubernetes,
    /// A client as admin (`system:masters`): the test's own hand.
    pub client: Client,
    /// A kubeconfig as ServiceAccount aplo-system/aplo, with a token the
    /// API server issued: the provisioner's identity.
    pub aplo_kubeconfig: PathBuf,
}

impl World {
    /// Start a control plane and apply deploy/base's RBAC.
    pub async fn start() -> World {
        World::start_with(Options::default()).await
    }

    /// [`World::start`] with the API server's audit log on, to read back
    /// every request ([`Kubernetes::audit`]).
    pub async fn audited() -> World {
        World::start_with(Options {
            audit: true,
            ..Options::default()
        })
        .await
    }

    /// [`World::start`] with the fixture's options (e.g. the controller
    /// manager's API rate for a load run).
    pub async fn start_with(options: Options) -> World {
        let k8s = Kubernetes::start(options)
            .await
            .unwrap_or_else(|e| panic!("the control plane starts: {e}"));
        k8s.apply(&crate::classic::deploy_base(
            &k8s,
            &crate::classic::DEPLOY_KINDS,
        ));
        let client = k8s.client().await;
        let aplo_kubeconfig = k8s.service_account_kubeconfig(NAMESPACE, SERVICE_ACCOUNT);
        World {
            k8s,
            client,
            aplo_kubeconfig,
        }
    }

    /// A client as aplo's ServiceAccount: what the provisioner uses, so
    /// that a call deploy/base's RBAC does not grant fails.
    pub async fn aplo(&self) -> Client {
        client_from(&self.aplo_kubeconfig).await
    }

    /// Create `namespace` unless it exists.
    pub async fn namespace(&self, namespace: &str) {
        let api: Api<Namespace> = Api::all(self.client.clone());
        if api
            .get_opt(namespace)
            .await
            .expect("get a namespace")
            .is_some()
        {
            return;
        }
        let object = Namespace {
            metadata: ObjectMeta {
                name: Some(namespace.into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        match api.create(&PostParams::default(), &object).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => panic!("namespace {namespace}: {e}"),
        }
    }

    /// Claims in a namespace.
    pub fn claims(&self, namespace: &str) -> Api<PersistentVolumeClaim> {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// PVs.
    pub fn volumes(&self) -> Api<PersistentVolume> {
        Api::all(self.client.clone())
    }

    /// Every PV.
    pub async fn pvs(&self) -> Vec<PersistentVolume> {
        self.volumes()
            .list(&ListParams::default())
            .await
            .expect("list PVs")
            .items
    }

    /// Wait until at most `left` PVs remain.
    pub async fn wait_pvs_at_most(&self, left: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let pvs = self.pvs().await;
            if pvs.len() <= left {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} PVs after {timeout:?}, not at most {left}: {:?}",
                pvs.len(),
                pvs.iter().map(|p| p.name_any()).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Wait until the named PV is gone.
    pub async fn wait_pv_gone(&self, name: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while let Some(pv) = self.volumes().get_opt(name).await.expect("get a PV") {
            assert!(
                Instant::now() < deadline,
                "PV {name} is still there after {timeout:?}: {:?}",
                pv.metadata.finalizers
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Wait until the named PV is in `phase`; returns it.
    pub async fn wait_pv_phase(
        &self,
        name: &str,
        phase: &str,
        timeout: Duration,
    ) -> PersistentVolume {
        let deadline = Instant::now() + timeout;
        loop {
            let pv = self.volumes().get(name).await.expect("get a PV");
            let now = pv.status.as_ref().and_then(|s| s.phase.clone());
            if now.as_deref() == Some(phase) {
                return pv;
            }
            assert!(
                Instant::now() < deadline,
                "PV {name} is {now:?}, not {phase}, after {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Create a StorageClass for aplo.
    pub async fn class(&self, name: &str, parameters: &[(&str, &str)], reclaim: &str) {
        let class = StorageClass {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            provisioner: PROVISIONER.into(),
            parameters: Some(
                parameters
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            reclaim_policy: Some(reclaim.into()),
            allow_volume_expansion: Some(true),
            ..StorageClass::default()
        };
        Api::<StorageClass>::all(self.client.clone())
            .create(&PostParams::default(), &class)
            .await
            .expect("the class is created");
    }

    /// Create a claim; returns its uid.
    pub async fn claim(&self, namespace: &str, name: &str, class: &str, size: &str) -> String {
        self.namespace(namespace).await;
        let claim = claim(name, class, size);
        self.claims(namespace)
            .create(&PostParams::default(), &claim)
            .await
            .expect("the claim is created")
            .uid()
            .expect("a uid")
    }

    /// Wait until every named claim is Bound; panics with the unbound ones
    /// after `timeout`.
    pub async fn wait_bound(&self, namespace: &str, names: &[String], timeout: Duration) {
        let api = self.claims(namespace);
        let deadline = Instant::now() + timeout;
        loop {
            let list = api.list(&ListParams::default()).await.expect("list claims");
            let bound: Vec<String> = list
                .items
                .iter()
                .filter(|c| c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound"))
                .map(|c| c.name_any())
                .collect();
            let unbound: Vec<&String> = names.iter().filter(|n| !bound.contains(n)).collect();
            if unbound.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                let mut events = Vec::new();
                for name in unbound.iter().take(3) {
                    for e in self.events_about(namespace, name).await {
                        events.push(format!(
                            "{name}: {} {}",
                            e.reason.unwrap_or_default(),
                            e.note.unwrap_or_default()
                        ));
                    }
                }
                panic!(
                    "claims not bound after {timeout:?}: {unbound:?}; their events:\n{}",
                    events.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The events (events.k8s.io) about one object, oldest first.
    pub async fn events_about(&self, namespace: &str, name: &str) -> Vec<Event> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        let mut events: Vec<Event> = api
            .list(&ListParams::default())
            .await
            .expect("list events")
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .collect();
        events.sort_by_key(|e| e.event_time.as_ref().map(|t| t.0));
        events
    }

    /// Wait until an event with `reason` is posted about an object.
    pub async fn wait_event(
        &self,
        namespace: &str,
        name: &str,
        reason: &str,
        timeout: Duration,
    ) -> Event {
        let deadline = Instant::now() + timeout;
        loop {
            let events = self.events_about(namespace, name).await;
            if let Some(e) = events.iter().find(|e| e.reason.as_deref() == Some(reason)) {
                return e.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no {reason} event about {namespace}/{name} after {timeout:?}; events: {:?}",
                events
                    .iter()
                    .map(|e| (e.reason.clone(), e.note.clone()))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A claim for `size` of a class, ReadWriteMany.
pub fn claim(name: &str, class: &str, size: &str) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteMany".into()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_owned(),
                    Quantity(size.into()),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            storage_class_name: Some(class.into()),
            ..PersistentVolumeClaimSpec::default()
        }),
        status: None,
    }
}

/// A heketi topology of `nodes` nodes over three zones, two devices each,
/// for the simulate executor.
pub fn sim_topology(nodes: usize) -> String {
    let nodes: Vec<String> = (0..nodes)
        .map(|i| {
            format!(
                r#"{{"node": {{"hostnames": {{"manage": ["node{i}"], "storage": ["10.0.0.{}"]}}, "zone": {}}}, "devices": ["/dev/sdb", "/dev/sdc"]}}"#,
                i + 1,
                i % 3 + 1
            )
        })
        .collect();
    format!(r#"{{"clusters": [{{"nodes": [{}]}}]}}"#, nodes.join(", "))
}

/// The bundled policies, loaded once per process (every engine of a test
/// process shares them).
pub fn registry() -> Arc<Registry> {
    static REGISTRY: std::sync::OnceLock<Arc<Registry>> = std::sync::OnceLock::new();
    REGISTRY
        .get_or_init(|| {
            let runtime = Arc::new(
                aplo::policy::Runtime::new(aplo::policy::RuntimeConfig::default())
                    .expect("a policy runtime"),
            );
            Arc::new(
                Registry::open(runtime, aplo::policy::RegistryConfig::default())
                    .expect("the bundled policies load"),
            )
        })
        .clone()
}

/// An engine on the simulate executor with `nodes` nodes of 1 TiB devices.
pub async fn sim_engine(nodes: usize) -> Arc<Engine> {
    sim_engine_on(Arc::new(MemoryStore::default()), nodes).await
}

/// [`sim_engine`] over a given store.
pub async fn sim_engine_on(store: Arc<dyn aplo::store::Store>, nodes: usize) -> Arc<Engine> {
    engine_on(store, Arc::new(SimDriver::new(1 << 40)), nodes).await
}

/// An engine over `store` and `driver` with `nodes` simulated nodes in
/// three zones.
pub async fn engine_on(
    store: Arc<dyn aplo::store::Store>,
    driver: Arc<dyn aplo::engine::driver::Driver>,
    nodes: usize,
) -> Arc<Engine> {
    let engine =
        Engine::new(store, driver, registry(), EngineConfig::default()).expect("an engine");
    let spec = parse_topology(&sim_topology(nodes)).expect("the topology parses");
    let report = engine
        .load_topology(
            &spec,
            LoadOptions {
                backend: Backend::LvmThin,
            },
        )
        .await
        .expect("the topology loads");
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    Arc::new(engine)
}

/// A provisioner running in this process.
pub struct Provisioner {
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// Its metrics.
    pub metrics: Arc<Metrics>,
    /// Its phase.
    pub status: Arc<Status>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Provisioner {
    /// Start `aplo::kube::serve` with `engine`, without leader election
    /// unless `options.lease` says otherwise.
    pub fn start(client: Client, engine: Arc<Engine>, options: ServeOptions) -> Provisioner {
        Provisioner::start_with(client, move || engine, options)
    }

    /// [`Provisioner::start`] with the engine opened only once this
    /// instance leads.
    pub fn start_with(
        client: Client,
        open: impl FnOnce() -> Arc<Engine> + Send + 'static,
        options: ServeOptions,
    ) -> Provisioner {
        let metrics = Arc::new(Metrics::new());
        // Every engine of the tests runs the policies of [`registry`].
        metrics.add_policies(registry().runtime().metrics());
        let status = Arc::new(Status::default());
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let shutdown = {
            let mut stopped = stopped.clone();
            let fut: futures::future::BoxFuture<'static, ()> = Box::pin(async move {
                let _ = stopped.wait_for(|s| *s).await;
            });
            futures::FutureExt::shared(fut)
        };
        let task = tokio::spawn(aplo::kube::serve(
            client,
            move || async move { Ok(open()) },
            options,
            metrics.clone(),
            status.clone(),
            shutdown,
        ));
        Provisioner {
            task,
            metrics,
            status,
            stop,
        }
    }

    /// Quick retries, so that tests do not wait for production backoffs.
    pub fn options() -> ServeOptions {
        let mut settings = Settings::new(PROVISIONER, "test");
        settings.refusal_backoff = Duration::from_millis(500);
        settings.retry_backoff = Duration::from_millis(100);
        settings.sweep_interval = Duration::from_secs(1);
        ServeOptions {
            settings,
            lease: None,
            health_interval: Duration::from_secs(60),
            remount_bricks: false,
            pod: None,
        }
    }

    /// Ask it to stop and wait until it has.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.task
            .await
            .expect("the provisioner task does not panic")
    }

    /// Kill it where it stands (a crash: no graceful shutdown).
    pub fn kill(self) {
        self.task.abort();
    }
}

/// The simulate driver with a switch that makes volume deletion fail, to
/// see how the provisioner reports and retries a failed delete, and an
/// optional gate that holds every brick creation until it opens, to see
/// operations in flight.
#[derive(Debug)]
pub struct BreakableDriver {
    inner: SimDriver,
    /// While set, stopping or deleting a gluster volume fails.
    pub fail_deletes: std::sync::atomic::AtomicBool,
    /// Brick creations wait until this is `true`.
    gate: Option<tokio::sync::watch::Receiver<bool>>,
}

impl BreakableDriver {
    /// A working driver with 1 TiB devices.
    pub fn new() -> BreakableDriver {
        BreakableDriver {
            inner: SimDriver::new(1 << 40),
            fail_deletes: std::sync::atomic::AtomicBool::new(false),
            gate: None,
        }
    }

    /// A working driver with 1 TiB devices that holds every brick
    /// creation until `open` turns `true`.
    pub fn gated(open: tokio::sync::watch::Receiver<bool>) -> BreakableDriver {
        BreakableDriver {
            gate: Some(open),
            ..BreakableDriver::new()
        }
    }
}

impl Default for BreakableDriver {
    fn default() -> Self {
        BreakableDriver::new()
    }
}

mod breakable {
    use aplo::engine::driver::{Applied, DeviceFacts, Driver, DriverError};
    use aplo::exec::command::BoxFuture;
    use aplo::exec::gluster::{BrickStatus, Peer, VolumeInfo};
    use aplo::model::storage::{DeviceRecord, NodeRecord};
    use aplo::plan::effect::Effect;
    use std::sync::atomic::Ordering;

    impl Driver for super::BreakableDriver {
        fn apply<'a>(&'a self, effect: &'a Effect) -> BoxFuture<'a, Result<Applied, DriverError>> {
            let deleting = matches!(
                effect,
                Effect::StopVolume { .. } | Effect::DeleteVolume { .. }
            );
            if deleting && self.fail_deletes.load(Ordering::SeqCst) {
                return Box::pin(async {
                    Err(DriverError::Refused(
                        "injected failure: the gluster volume cannot be deleted".into(),
                    ))
                });
            }
            match (&self.gate, effect) {
                (Some(open), Effect::CreateBrick(_)) => {
                    let mut open = open.clone();
                    Box::pin(async move {
                        let _ = open.wait_for(|o| *o).await;
                        self.inner.apply(effect).await
                    })
                }
                _ => self.inner.apply(effect),
            }
        }

        fn peers<'a>(
            &'a self,
            via: &'a [NodeRecord],
        ) -> BoxFuture<'a, Result<Vec<Peer>, DriverError>> {
            self.inner.peers(via)
        }

        fn volumes<'a>(
            &'a self,
            via: &'a [NodeRecord],
        ) -> BoxFuture<'a, Result<Vec<VolumeInfo>, DriverError>> {
            self.inner.volumes(via)
        }

        fn volume_status<'a>(
            &'a self,
            via: &'a [NodeRecord],
            name: &'a str,
        ) -> BoxFuture<'a, Result<Vec<BrickStatus>, DriverError>> {
            self.inner.volume_status(via, name)
        }

        fn device_facts<'a>(
            &'a self,
            node: &'a NodeRecord,
            device: &'a DeviceRecord,
        ) -> BoxFuture<'a, Result<DeviceFacts, DriverError>> {
            self.inner.device_facts(node, device)
        }
    }
}

/// An engine over `driver` with `nodes` simulated nodes, in memory.
pub async fn engine_with(
    driver: Arc<dyn aplo::engine::driver::Driver>,
    nodes: usize,
) -> Arc<Engine> {
    engine_on(Arc::new(MemoryStore::default()), driver, nodes).await
}
