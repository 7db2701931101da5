//! list (selectors, paging, continue expiry, resourceVersion semantics),
//! watch (resume, bookmarks, selectors, 410), and kube's watcher and
//! reflector converging through dropped watches and expired history.

mod common;

use std::time::Duration;

use aplo_dev_apiserver::Options;
use common::{client, eventually, server_with, status};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, VersionMatch, WatchEvent,
    WatchParams,
};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use serde_json::json;

fn claim(name: &str, tier: &str) -> PersistentVolumeClaim {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": {"tier": tier}}, "spec": {}}),
    )
    .unwrap()
}

fn options() -> Options {
    Options {
        binder: false,
        bookmark_interval: Duration::from_millis(100),
        ..Options::default()
    }
}

fn names(list: &kube::core::ObjectList<PersistentVolumeClaim>) -> Vec<String> {
    list.items
        .iter()
        .map(|c| c.metadata.name.clone().unwrap())
        .collect()
}

#[tokio::test]
async fn lists_filter_and_page_consistently() {
    let server = server_with(options()).await;
    let c = client(&server);
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(c.clone(), "default");
    for i in 0..5 {
        pvcs.create(
            &PostParams::default(),
            &claim(&format!("c{i}"), if i % 2 == 0 { "db" } else { "web" }),
        )
        .await
        .unwrap();
    }
    let other: Api<PersistentVolumeClaim> = Api::namespaced(c.clone(), "kube-system");
    other
        .create(&PostParams::default(), &claim("sys", "db"))
        .await
        .unwrap();

    let all: Api<PersistentVolumeClaim> = Api::all(c.clone());
    assert_eq!(
        all.list(&ListParams::default()).await.unwrap().items.len(),
        6
    );
    assert_eq!(
        names(
            &pvcs
                .list(&ListParams::default().labels("tier=db"))
                .await
                .unwrap()
        ),
        ["c0", "c2", "c4"]
    );
    assert_eq!(
        names(
            &pvcs
                .list(&ListParams::default().labels("tier notin (db)"))
                .await
                .unwrap()
        ),
        ["c1", "c3"]
    );
    assert_eq!(
        names(
            &pvcs
                .list(&ListParams::default().labels("tier in (web),!gone"))
                .await
                .unwrap()
        ),
        ["c1", "c3"]
    );
    assert_eq!(
        names(
            &all.list(&ListParams::default().fields("metadata.namespace=kube-system"))
                .await
                .unwrap()
        ),
        ["sys"]
    );
    assert_eq!(
        names(
            &pvcs
                .list(&ListParams::default().fields("metadata.name!=c0"))
                .await
                .unwrap()
        )
        .len(),
        4
    );

    // Paging sees the list as of its first page, even across writes.
    let first = pvcs.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(names(&first), ["c0", "c1"]);
    assert_eq!(first.metadata.remaining_item_count, Some(3));
    pvcs.delete("c3", &DeleteParams::default()).await.unwrap();
    pvcs.create(&PostParams::default(), &claim("c2a", "db"))
        .await
        .unwrap();
    let token = first.metadata.continue_.clone().unwrap();
    let second = pvcs
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(names(&second), ["c2", "c3"]);
    assert_eq!(
        second.metadata.resource_version,
        first.metadata.resource_version
    );
    let third = pvcs
        .list(
            &ListParams::default()
                .limit(2)
                .continue_token(second.metadata.continue_.as_ref().unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(names(&third), ["c4"]);
    assert!(third.metadata.continue_.is_none());

    // Exact at an old version works while history covers it.
    let exact = ListParams::default()
        .at(first.metadata.resource_version.as_ref().unwrap())
        .matching(VersionMatch::Exact);
    assert_eq!(names(&pvcs.list(&exact).await.unwrap()).len(), 5);

    server.expire_history();
    let s = status(
        pvcs.list(&ListParams::default().limit(2).continue_token(&token))
            .await
            .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (410, "Expired"));
    assert_eq!(status(pvcs.list(&exact).await.unwrap_err()).code, 410);
    // Fresh lists still work, and NotOlderThan a too-new version is refused.
    let fresh = pvcs.list(&ListParams::default()).await.unwrap();
    assert_eq!(fresh.items.len(), 5);
}

#[tokio::test]
async fn watches_resume_bookmark_and_follow_selectors() {
    let server = server_with(options()).await;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client(&server), "default");
    let a = pvcs
        .create(&PostParams::default(), &claim("a", "db"))
        .await
        .unwrap();
    let rv = a.metadata.resource_version.clone().unwrap();
    pvcs.create(&PostParams::default(), &claim("b", "web"))
        .await
        .unwrap();

    // Resume after `a`: only b's ADDED, then bookmarks.
    let wp = WatchParams::default().labels("tier");
    let mut stream = pvcs.watch(&wp, &rv).await.unwrap().boxed();
    match stream.try_next().await.unwrap().unwrap() {
        WatchEvent::Added(o) => assert_eq!(o.metadata.name.as_deref(), Some("b")),
        other => panic!("{other:?}"),
    }
    match stream.try_next().await.unwrap().unwrap() {
        WatchEvent::Bookmark(b) => assert!(
            b.metadata.resource_version.parse::<u64>().unwrap() >= rv.parse::<u64>().unwrap()
        ),
        other => panic!("{other:?}"),
    }

    // A selector watch: an object that stops matching is DELETED for it.
    let mut db = pvcs
        .watch(
            &WatchParams::default().labels("tier=db").disable_bookmarks(),
            "0",
        )
        .await
        .unwrap()
        .boxed();
    assert!(matches!(
        db.try_next().await.unwrap().unwrap(),
        WatchEvent::Added(_)
    ));
    pvcs.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"tier": "web"}}})),
    )
    .await
    .unwrap();
    match db.try_next().await.unwrap().unwrap() {
        WatchEvent::Deleted(o) => assert_eq!(o.metadata.name.as_deref(), Some("a")),
        other => panic!("{other:?}"),
    }
    pvcs.patch(
        "b",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"tier": "db"}}})),
    )
    .await
    .unwrap();
    match db.try_next().await.unwrap().unwrap() {
        WatchEvent::Added(o) => assert_eq!(o.metadata.name.as_deref(), Some("b")),
        other => panic!("{other:?}"),
    }

    // drop_watches ends streams.
    server.drop_watches();
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = db.next().await {}
    })
    .await;
    assert!(end.is_ok(), "watch did not end after drop_watches");

    // Too old: an ERROR event with a 410 Status, HTTP 200.
    server.expire_history();
    let mut old = pvcs
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    match old.try_next().await.unwrap().unwrap() {
        WatchEvent::Error(e) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        other => panic!("{other:?}"),
    }
    assert!(old.try_next().await.unwrap().is_none());
}

#[tokio::test]
async fn streaming_list_ends_initial_events_with_a_bookmark() {
    let server = server_with(options()).await;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client(&server), "default");
    pvcs.create(&PostParams::default(), &claim("a", "db"))
        .await
        .unwrap();
    let wp = WatchParams::default().initial_events();
    let mut stream = pvcs.watch(&wp, "0").await.unwrap().boxed();
    assert!(matches!(
        stream.try_next().await.unwrap().unwrap(),
        WatchEvent::Added(_)
    ));
    match stream.try_next().await.unwrap().unwrap() {
        WatchEvent::Bookmark(b) => assert_eq!(
            b.metadata
                .annotations
                .get("k8s.io/initial-events-end")
                .map(String::as_str),
            Some("true")
        ),
        other => panic!("{other:?}"),
    }
}

/// Run a reflector over claims and check it converges to the server's
/// state after each disruption, with writes in between.
async fn reflector_converges(config: watcher::Config) {
    let server = server_with(options()).await;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client(&server), "default");
    for i in 0..20 {
        pvcs.create(&PostParams::default(), &claim(&format!("pre{i}"), "db"))
            .await
            .unwrap();
    }
    let (reader, writer) = reflector::store();
    let stream = reflector(writer, watcher(pvcs.clone(), config.page_size(7))).applied_objects();
    let task = tokio::spawn(async move { stream.for_each(|_| async {}).await });
    reader.wait_until_ready().await.unwrap();

    let converged = |expected: Vec<(String, String)>| {
        let reader = reader.clone();
        async move {
            eventually(10, || {
                let reader = reader.clone();
                let expected = expected.clone();
                async move {
                    let mut got: Vec<(String, String)> = reader
                        .state()
                        .iter()
                        .map(|c| {
                            (
                                c.metadata.name.clone().unwrap(),
                                c.metadata.resource_version.clone().unwrap(),
                            )
                        })
                        .collect();
                    got.sort();
                    (got == expected).then_some(())
                }
            })
            .await
        }
    };
    let truth = || async {
        let mut v: Vec<(String, String)> = pvcs
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|c| {
                (
                    c.metadata.name.unwrap(),
                    c.metadata.resource_version.unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    converged(truth().await).await;

    for round in 0..3 {
        server.drop_watches();
        for i in 0..5 {
            pvcs.create(
                &PostParams::default(),
                &claim(&format!("r{round}-{i}"), "web"),
            )
            .await
            .unwrap();
        }
        pvcs.delete(&format!("pre{round}"), &DeleteParams::default())
            .await
            .unwrap();
        converged(truth().await).await;

        server.expire_history();
        server.drop_watches();
        pvcs.patch(
            &format!("pre{}", round + 10),
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"round": round.to_string()}}})),
        )
        .await
        .unwrap();
        pvcs.delete(&format!("r{round}-0"), &DeleteParams::default())
            .await
            .unwrap();
        converged(truth().await).await;

        // Expiry without a dropped watch: the live stream goes on.
        server.expire_history();
        pvcs.delete(&format!("r{round}-1"), &DeleteParams::default())
            .await
            .unwrap();
        converged(truth().await).await;
    }
    task.abort();
}

#[tokio::test]
async fn reflector_converges_with_list_watch() {
    reflector_converges(watcher::Config::default()).await;
}

#[tokio::test]
async fn reflector_converges_with_streaming_lists() {
    reflector_converges(watcher::Config::default().streaming_lists()).await;
}

#[tokio::test]
async fn slow_watchers_get_410() {
    // A small history: a watcher that does not read (so that the socket
    // buffers fill up) falls more than `history` changes behind.
    let server = server_with(Options {
        history: 8,
        ..options()
    })
    .await;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client(&server), "default");
    let mut stream = pvcs
        .watch(&WatchParams::default().disable_bookmarks(), "0")
        .await
        .unwrap()
        .boxed();
    let padding = "x".repeat(64 * 1024);
    for i in 0..300 {
        let mut c = claim(&format!("c{i}"), "db");
        c.metadata.annotations = Some([("padding".to_string(), padding.clone())].into());
        pvcs.create(&PostParams::default(), &c).await.unwrap();
    }
    let mut saw_410 = false;
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap()
    {
        if let Ok(WatchEvent::Error(e)) = ev {
            assert_eq!(e.code, 410);
            saw_410 = true;
        }
    }
    assert!(saw_410, "a watcher that fell behind must get a 410");
}
