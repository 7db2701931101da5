//! Events posted through `events.k8s.io/v1` by kube's Recorder are visible
//! as `core/v1` events, found by the field selector `kubectl describe` uses.

mod common;

use common::{client, server};
use k8s_openapi::api::core::v1::{Event as CoreEvent, PersistentVolumeClaim};
use k8s_openapi::api::events::v1::Event;
use kube::Resource;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::events::{Event as RecordedEvent, EventType, Recorder, Reporter};
use serde_json::json;

#[tokio::test]
async fn recorder_events_show_up_as_core_events() {
    let server = server().await;
    let c = client(&server);
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(c.clone(), "default");
    let claim: PersistentVolumeClaim =
        serde_json::from_value(json!({"metadata": {"name": "data"}, "spec": {}})).unwrap();
    let claim = pvcs.create(&PostParams::default(), &claim).await.unwrap();
    let other: PersistentVolumeClaim =
        serde_json::from_value(json!({"metadata": {"name": "other"}, "spec": {}})).unwrap();
    let other = pvcs.create(&PostParams::default(), &other).await.unwrap();

    let recorder = Recorder::new(
        c.clone(),
        Reporter {
            controller: "aplo".into(),
            instance: Some("aplo-0".into()),
        },
    );
    let ev = RecordedEvent {
        type_: EventType::Normal,
        reason: "Provisioned".into(),
        note: Some("volume created".into()),
        action: "Provision".into(),
        secondary: None,
    };
    let reference = claim.object_ref(&());
    recorder.publish(&ev, &reference).await.unwrap();
    recorder.publish(&ev, &reference).await.unwrap();
    recorder.publish(&ev, &other.object_ref(&())).await.unwrap();

    let v1: Api<Event> = Api::namespaced(c.clone(), "default");
    let stored = v1
        .list(&ListParams::default().fields("regarding.name=data"))
        .await
        .unwrap();
    assert_eq!(stored.items.len(), 1);
    assert_eq!(stored.items[0].series.as_ref().unwrap().count, 2);

    let core: Api<CoreEvent> = Api::namespaced(c.clone(), "default");
    let selector = format!(
        "involvedObject.name=data,involvedObject.namespace=default,involvedObject.kind=PersistentVolumeClaim,involvedObject.uid={}",
        claim.metadata.uid.as_ref().unwrap()
    );
    let found = core
        .list(&ListParams::default().fields(&selector))
        .await
        .unwrap();
    assert_eq!(found.items.len(), 1, "{:?}", found.items);
    let e = &found.items[0];
    assert_eq!(e.message.as_deref(), Some("volume created"));
    assert_eq!(e.reason.as_deref(), Some("Provisioned"));
    assert_eq!(e.type_.as_deref(), Some("Normal"));
    assert_eq!(e.count, Some(2));
    assert_eq!(
        e.source.as_ref().unwrap().component.as_deref(),
        Some("aplo")
    );
    assert_eq!(e.reporting_component.as_deref(), Some("aplo"));
    assert!(e.first_timestamp.is_some() && e.last_timestamp.is_some());

    // Written through core/v1, read through events.k8s.io/v1.
    let posted: CoreEvent = serde_json::from_value(json!({"metadata": {"name": "legacy"}, "involvedObject": {"kind": "PersistentVolumeClaim", "name": "other", "namespace": "default"}, "message": "old style", "reason": "Legacy", "count": 3})).unwrap();
    core.create(&PostParams::default(), &posted).await.unwrap();
    let read = v1.get("legacy").await.unwrap();
    assert_eq!(read.note.as_deref(), Some("old style"));
    assert_eq!(read.regarding.unwrap().name.as_deref(), Some("other"));
    assert_eq!(read.deprecated_count, Some(3));
}
