//! The Kubernetes half of `aplo demo --kube` (feature `dev-apiserver`): a
//! StorageClass and a claim go to the DEVELOPMENT-ONLY in-memory API
//! server, the provisioner runs against it on the simulate executor, and
//! the outcome is read back from the objects and events.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use k8s_openapi::api::core::v1::{
    PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimSpec, VolumeResourceRequirements,
};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};

use super::claim::{DEFAULT_PROVISIONER, quantity};
use super::{Metrics, ServeOptions, Settings, Status};
use crate::exec::engine::Engine;
use crate::model::Pairs;

/// What the demo saw.
pub struct Outcome {
    /// The development API server's address.
    pub url: String,
    /// The claim's phase at the end.
    pub phase: String,
    /// The PV, when one was made.
    pub volume: Option<PersistentVolume>,
    /// The events about the claim, oldest first: (type, reason, note).
    pub events: Vec<(String, String, String)>,
}

/// Submit a class with `parameters` and a claim for `bytes`, let the
/// provisioner work on `engine`, and report.
pub async fn run(engine: Arc<Engine>, parameters: Pairs, bytes: u64) -> anyhow::Result<Outcome> {
    let server =
        aplo_dev_apiserver::ApiServer::start(aplo_dev_apiserver::Options::default()).await?;
    let url = server.url();
    let client = Client::try_from(kube::Config::new(url.parse()?))?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let shutdown = {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
        .boxed()
        .shared()
    };
    let serving = tokio::spawn(super::serve(
        client.clone(),
        move || async move { Ok(engine) },
        ServeOptions {
            settings: Settings::new(DEFAULT_PROVISIONER, "aplo-demo"),
            lease: None,
            health_interval: Duration::from_secs(60),
            remount_bricks: false,
            pod: None,
        },
        Arc::new(Metrics::new()),
        Arc::new(Status::default()),
        shutdown,
    ));

    let class = StorageClass {
        metadata: ObjectMeta {
            name: Some("glusterfs".into()),
            ..ObjectMeta::default()
        },
        provisioner: DEFAULT_PROVISIONER.into(),
        parameters: Some(parameters.into_iter().collect()),
        ..StorageClass::default()
    };
    Api::<StorageClass>::all(client.clone())
        .create(&PostParams::default(), &class)
        .await?;
    let claim = PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some("gluster-claim".into()),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteMany".into()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_owned(), quantity(bytes))])),
                ..VolumeResourceRequirements::default()
            }),
            storage_class_name: Some("glusterfs".into()),
            ..PersistentVolumeClaimSpec::default()
        }),
        status: None,
    };
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    claims.create(&PostParams::default(), &claim).await?;

    // Bound, or refused: a refusal is retried with backoff, so the first
    // ProvisioningFailed event is the answer for a demo.
    let events_api: Api<Event> = Api::namespaced(client.clone(), "default");
    let deadline = Instant::now() + Duration::from_secs(60);
    let (phase, events) = loop {
        let current = claims.get("gluster-claim").await?;
        let phase = current
            .status
            .and_then(|s| s.phase)
            .unwrap_or_else(|| "Pending".into());
        let mut events: Vec<Event> = events_api
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter(|e| {
                e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("gluster-claim")
            })
            .collect();
        events.sort_by_key(|e| e.event_time.as_ref().map(|t| t.0));
        let failed = events
            .iter()
            .any(|e| e.reason.as_deref() == Some("ProvisioningFailed"));
        if phase == "Bound" || failed || Instant::now() > deadline {
            break (phase, events);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let volume = match claims
        .get("gluster-claim")
        .await?
        .spec
        .and_then(|s| s.volume_name)
    {
        Some(name) => Some(
            Api::<PersistentVolume>::all(client.clone())
                .get(&name)
                .await?,
        ),
        None => None,
    };
    let _ = stop.send(true);
    serving.await??;
    let events = events
        .into_iter()
        .map(|e| {
            (
                e.type_.unwrap_or_default(),
                e.reason.unwrap_or_default(),
                e.note.unwrap_or_default(),
            )
        })
        .collect();
    server.shutdown().await;
    Ok(Outcome {
        url,
        phase,
        volume,
        events,
    })
}
