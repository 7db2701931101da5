//! Property tests of every JSON entry point: the heketi API's request
//! bodies, the admission webhook's reviews, topology files and JWT headers.
//! Valid documents are mutated (a random node replaced by random JSON, with
//! the field names these documents use) and raw bytes are thrown at them.
//! Whatever comes in, nothing panics, nothing answers a 5xx, and every
//! refusal says why.

use std::sync::{Arc, OnceLock};

use aplo::http::admission::{self, AdmissionOptions, AdmissionState, StaticClasses, UsageSource};
use aplo::http::api::{ApiState, KEEP_RESULTS, router};
use aplo::http::auth::{self, Keys};
use aplo::http::queue::Queue;
use aplo::model::Usage;
use aplo::model::topology::parse_topology;
use axum::Router;
use axum::body::Body;
use k8s_openapi::api::storage::v1::StorageClass;
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use tower::ServiceExt;

/// Field names of the documents under test, so mutations hit real fields.
const KEYS: &[&str] = &[
    "size",
    "name",
    "durability",
    "type",
    "replicate",
    "replica",
    "disperse",
    "data",
    "redundancy",
    "snapshot",
    "enable",
    "factor",
    "clusters",
    "gid",
    "glustervolumeoptions",
    "expand_size",
    "node",
    "tags",
    "change_type",
    "state",
    "hostnames",
    "manage",
    "storage",
    "zone",
    "cluster",
    "file",
    "block",
    "parameters",
    "request",
    "object",
    "oldObject",
    "spec",
    "resources",
    "requests",
    "storageClassName",
    "uid",
    "operation",
    "kind",
    "apiVersion",
    "metadata",
    "namespace",
    "annotations",
    "accessModes",
    "volumeMode",
    "devices",
    "nodes",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        Just(json!(-1)),
        Just(json!(0)),
        Just(json!(u64::MAX)),
        "[a-zA-Z0-9 ._/=;-]{0,16}".prop_map(Value::from),
        prop::sample::select(vec![
            "5Gi",
            "-1Gi",
            "1e400",
            "replicate",
            "disperse",
            "none",
            "",
            "set",
            "delete",
            "online",
            "failed"
        ])
        .prop_map(Value::from),
        ".{0,8}".prop_map(Value::from),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..5).prop_map(|pairs| {
                Value::Object(
                    pairs
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

/// Every node of `doc` in pre-order, counted.
fn count(doc: &Value) -> usize {
    1 + match doc {
        Value::Array(items) => items.iter().map(count).sum(),
        Value::Object(map) => map.values().map(count).sum(),
        _ => 0,
    }
}

/// `doc` with its `n`th node (pre-order, modulo the count) replaced.
fn replace(doc: &Value, n: usize, with: Value) -> Value {
    fn walk(doc: &mut Value, n: &mut usize, with: &mut Option<Value>) {
        if *n == 0 {
            if let Some(with) = with.take() {
                *doc = with;
            }
            return;
        }
        *n -= 1;
        match doc {
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, n, with)),
            Value::Object(map) => map.values_mut().for_each(|v| walk(v, n, with)),
            _ => {}
        }
    }
    let mut out = doc.clone();
    let mut n = n % count(doc);
    walk(&mut out, &mut n, &mut Some(with));
    out
}

/// A mutated document: some nodes replaced, maybe a field dropped.
fn mutated(base: Value) -> impl Strategy<Value = Value> {
    prop::collection::vec((any::<usize>(), value()), 1..3).prop_map(move |edits| {
        edits
            .into_iter()
            .fold(base.clone(), |doc, (n, with)| replace(&doc, n, with))
    })
}

struct Target {
    runtime: tokio::runtime::Runtime,
    api: Router,
    admission: Router,
    volume: String,
}

struct NoUsage;

impl UsageSource for NoUsage {
    fn usage(&self, _: &str, _: &str) -> Option<(Usage, Usage)> {
        Some((Usage::default(), Usage::default()))
    }
}

fn target() -> &'static Target {
    static TARGET: OnceLock<Target> = OnceLock::new();
    TARGET.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let engine = runtime.block_on(aplo_e2e::kube::sim_engine(6));
        let volume = runtime
            .block_on(engine.create_volume(aplo::engine::CreateRequest {
                bytes: aplo::model::GIB,
                ..Default::default()
            }))
            .unwrap();
        let api = router(ApiState {
            engine: engine.clone(),
            keys: None,
            queue: Queue::new(1024, KEEP_RESULTS),
        });
        let class: StorageClass = serde_json::from_value(json!({
            "metadata": {"name": "gold"},
            "provisioner": aplo::front::claim::DEFAULT_PROVISIONER,
            "parameters": {"classes.class": "replica3"},
        }))
        .unwrap();
        let admission = admission::router(AdmissionState::new(
            engine.registry().clone(),
            Arc::new(StaticClasses::new([class])),
            Arc::new(NoUsage),
            AdmissionOptions::default(),
        ));
        Target {
            runtime,
            api,
            admission,
            volume: volume.id.to_string(),
        }
    })
}

/// Send `body`, and check the answer: no panic (the test would fail), no
/// 5xx, and a refusal carries a message.
fn send(router: &Router, method: &str, path: &str, body: Vec<u8>) -> (u16, String) {
    let t = target();
    let request = axum::http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let (status, text) = t.runtime.block_on(async {
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), 16 << 20)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    });
    assert!(status < 500, "{method} {path} answered {status}: {text}");
    if status >= 400 {
        assert!(
            !text.trim().is_empty(),
            "{method} {path} refused ({status}) without a reason"
        );
    }
    (status, text)
}

fn volume_create() -> Value {
    json!({
        "size": 1,
        "name": "fuzz",
        "durability": {"type": "replicate", "replicate": {"replica": 3}, "disperse": {"data": 4, "redundancy": 2}},
        "gid": 1000,
        "glustervolumeoptions": ["performance.readdir-ahead on"],
        "snapshot": {"enable": true, "factor": 1.5},
    })
}

fn review() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/admission/create.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn topology() -> Value {
    serde_json::from_str(&aplo_e2e::kube::sim_topology(2)).unwrap()
}

#[test]
fn the_unmutated_documents_are_accepted() {
    // Otherwise the properties below could pass by refusing everything.
    let t = target();
    let (status, body) = send(
        &t.api,
        "POST",
        "/volumes",
        volume_create().to_string().into_bytes(),
    );
    assert_eq!(status, 202, "{body}");
    let path = format!("/volumes/{}/expand", t.volume);
    let (status, body) = send(&t.api, "POST", &path, br#"{"expand_size": 1}"#.to_vec());
    assert_eq!(status, 202, "{body}");
    let (status, body) = send(
        &t.admission,
        "POST",
        "/admission/pvc",
        review().to_string().into_bytes(),
    );
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["response"]["allowed"], true, "{body}");
    parse_topology(&topology().to_string()).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn volume_create_survives_any_body(doc in mutated(volume_create())) {
        let t = target();
        let (status, _) = send(&t.api, "POST", "/volumes", doc.to_string().into_bytes());
        prop_assert!(matches!(status, 202 | 400 | 422 | 429), "{status} for {doc}");
    }

    #[test]
    fn volume_expand_survives_any_body(doc in mutated(json!({"expand_size": 1}))) {
        let t = target();
        let path = format!("/volumes/{}/expand", t.volume);
        let (status, _) = send(&t.api, "POST", &path, doc.to_string().into_bytes());
        prop_assert!(matches!(status, 202 | 400 | 422 | 429), "{status} for {doc}");
    }

    #[test]
    fn admission_survives_any_review(doc in mutated(review())) {
        let t = target();
        let (status, body) = send(&t.admission, "POST", "/admission/pvc", doc.to_string().into_bytes());
        prop_assert!(matches!(status, 200 | 400), "{status} for {doc}");
        if status == 200 {
            let answer: Value = serde_json::from_str(&body).unwrap();
            prop_assert!(answer["response"]["allowed"].is_boolean(), "{body}");
            prop_assert_eq!(&answer["response"]["uid"], &doc["request"]["uid"]);
        }
    }

    #[test]
    fn raw_bytes_are_refused_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let t = target();
        let (status, _) = send(&t.api, "POST", "/volumes", bytes.clone());
        prop_assert!(matches!(status, 202 | 400 | 422), "{status}");
        let (status, _) = send(&t.admission, "POST", "/admission/pvc", bytes);
        prop_assert!(matches!(status, 200 | 400), "{status}");
    }

    #[test]
    fn topology_files_parse_or_name_the_problem(doc in mutated(topology())) {
        if let Err(e) = parse_topology(&doc.to_string()) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn jwt_headers_never_panic(header in ".{0,300}", dots in "[A-Za-z0-9_-]{0,40}\\.[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_-]{0,40}") {
        let keys = Keys { admin: b"admin".to_vec(), user: b"user".to_vec(), iat_leeway: 120 };
        for candidate in [header.clone(), format!("Bearer {header}"), format!("Bearer {dots}")] {
            prop_assert!(auth::verify(&keys, Some(&candidate), "GET", "/volumes", 1_700_000_000).is_err());
        }
    }
}
