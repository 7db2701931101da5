//! The PersistentVolumeClaim admission webhook over real HTTP, and over
//! HTTPS with a certificate made in the test and replaced while serving:
//! AdmissionReviews in the documented `admission.k8s.io/v1` format
//! (`tests/fixtures/admission/`) in, AdmissionReviews or plain-text 400s
//! out, with the real policies in the sandbox, including a looping one.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

#[path = "support/looping.rs"]
mod looping;

use aplo::front::claim::DEFAULT_PROVISIONER;
use aplo::http::admission::{
    ANN_DEFAULT_CLASS, AdmissionOptions, AdmissionState, FailurePolicy, StaticClasses, UsageSource,
    router,
};
use aplo::model::{GIB, Usage};
use aplo::policy::{Limits, Registry, RegistryConfig, Runtime, RuntimeConfig};
use aplo_e2e::http::{Reply, exchange};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

/// The looping durability policy's deadline.
const LOOP_DEADLINE: Duration = Duration::from_millis(50);

/// The bundled policies plus `looper` (from a policy directory, with a
/// short deadline), loaded once per test binary.
fn registry() -> Arc<Registry> {
    static REGISTRY: OnceLock<(Arc<Registry>, tempfile::TempDir)> = OnceLock::new();
    REGISTRY
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("a policy directory");
            std::fs::write(dir.path().join("looper.wasm"), looping::policy()).unwrap();
            let runtime = Arc::new(Runtime::new(RuntimeConfig::default()).expect("a runtime"));
            let config = RegistryConfig {
                dir: Some(dir.path().to_owned()),
                limits: BTreeMap::from([(
                    "looper".to_owned(),
                    Limits {
                        deadline: LOOP_DEADLINE,
                        ..Limits::default()
                    },
                )]),
                ..RegistryConfig::default()
            };
            let registry = Registry::open(runtime, config).expect("the registry opens");
            registry.get("looper").expect("the looping policy loads");
            (Arc::new(registry), dir)
        })
        .0
        .clone()
}

fn class(name: &str, provisioner: &str, parameters: &[(&str, &str)]) -> StorageClass {
    StorageClass {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        provisioner: provisioner.into(),
        parameters: Some(
            parameters
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        allow_volume_expansion: Some(true),
        ..StorageClass::default()
    }
}

/// `gold`: replica 3 up to 10 GiB a volume, 20 GiB a namespace (the
/// default class); `bare`: no quota policy; `nfs`: another provisioner;
/// `slow`: a durability policy that loops; `stuck`: one that loops for
/// longer than the webhook may take (see [`stuck_registry`]).
fn classes() -> StaticClasses {
    let mut gold = class(
        "gold",
        DEFAULT_PROVISIONER,
        &[
            ("durability", "classes"),
            ("classes.class", "replica3"),
            ("classes.replica3.max-size", "10Gi"),
            ("quota", "namespace-quota"),
            ("namespace-quota.max-bytes", "20Gi"),
        ],
    );
    gold.metadata.annotations = Some(BTreeMap::from([(
        ANN_DEFAULT_CLASS.to_owned(),
        "true".to_owned(),
    )]));
    StaticClasses::new([
        gold,
        class("bare", DEFAULT_PROVISIONER, &[("classes.class", "arbiter")]),
        class("nfs", "nfs.example.com/provisioner", &[("server", "x")]),
        class(
            "slow",
            DEFAULT_PROVISIONER,
            &[("durability", "looper"), ("quota", "namespace-quota")],
        ),
        class("stuck", DEFAULT_PROVISIONER, &[("durability", "stuck")]),
    ])
}

/// Usage answers: `namespace_bytes` in use in every namespace; counts the
/// calls and remembers the claim named in the last one.
#[derive(Default)]
struct FixedUsage {
    namespace_bytes: Option<u64>,
    calls: AtomicUsize,
    last: std::sync::Mutex<Option<(String, String)>>,
}

impl UsageSource for FixedUsage {
    fn usage(&self, namespace: &str, claim: &str) -> Option<(Usage, Usage)> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        *self.last.lock().unwrap() = Some((namespace.to_owned(), claim.to_owned()));
        let bytes = self.namespace_bytes?;
        let usage = Usage { bytes, volumes: 1 };
        Some((usage, usage))
    }
}

fn usage(namespace_bytes: u64) -> Arc<FixedUsage> {
    Arc::new(FixedUsage {
        namespace_bytes: Some(namespace_bytes),
        ..FixedUsage::default()
    })
}

/// Serve the webhook over plain HTTP on a free port.
async fn serve(usage: Arc<FixedUsage>, failure_policy: FailurePolicy) -> SocketAddr {
    serve_with(
        registry(),
        usage,
        AdmissionOptions {
            failure_policy,
            ..AdmissionOptions::default()
        },
    )
    .await
}

/// [`serve`] with `registry`'s policies and `options`.
async fn serve_with(
    registry: Arc<Registry>,
    usage: Arc<FixedUsage>,
    options: AdmissionOptions,
) -> SocketAddr {
    let state = AdmissionState::new(registry, Arc::new(classes()), usage, options);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(state)).await });
    addr
}

/// The review's response, checked to be an AdmissionReview answering
/// `uid`.
fn answer(reply: &Reply, uid: &str) -> Value {
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let review = reply.json();
    assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(review["kind"], "AdmissionReview");
    assert_eq!(review["response"]["uid"], uid);
    review["response"].clone()
}

/// One HTTP/1.1 POST to /admission/pvc over `stream`.
async fn send(stream: impl AsyncRead + AsyncWrite + Unpin, body: &[u8]) -> Reply {
    let mut request = format!(
        "POST /admission/pvc HTTP/1.1\r\nHost: aplo.aplo-system.svc\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    exchange(stream, &request).await
}

async fn post(addr: SocketAddr, body: &[u8]) -> Reply {
    send(TcpStream::connect(addr).await.unwrap(), body).await
}

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/admission")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// A CREATE review of claim `data` in `shop` for `size` of `class` (`None`:
/// no storageClassName).
fn create(class: Option<&str>, size: &str) -> Value {
    let mut review = fixture("create.json");
    let spec = &mut review["request"]["object"]["spec"];
    match class {
        Some(name) => spec["storageClassName"] = json!(name),
        None => {
            spec.as_object_mut().unwrap().remove("storageClassName");
        }
    }
    spec["resources"]["requests"]["storage"] = json!(size);
    review
}

/// An UPDATE review of the bound claim `data` from `from` to `to`.
fn update(from: &str, to: &str) -> Value {
    let mut review = fixture("update-grow.json");
    let request = &mut review["request"];
    request["oldObject"]["spec"]["resources"]["requests"]["storage"] = json!(from);
    request["oldObject"]["status"]["capacity"]["storage"] = json!(from);
    request["object"]["status"]["capacity"]["storage"] = json!(from);
    request["object"]["spec"]["resources"]["requests"]["storage"] = json!(to);
    review
}

fn uid(review: &Value) -> String {
    review["request"]["uid"].as_str().unwrap().to_owned()
}

async fn ask(addr: SocketAddr, review: &Value) -> Value {
    answer(
        &post(addr, review.to_string().as_bytes()).await,
        &uid(review),
    )
}

fn message(response: &Value) -> &str {
    response["status"]["message"].as_str().unwrap_or_default()
}

fn assert_allowed(response: &Value) {
    assert_eq!(response["allowed"], true, "{response}");
    assert!(response.get("status").is_none(), "{response}");
}

fn assert_denied(response: &Value, code: u16, needles: &[&str]) {
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(response["status"]["code"], code, "{response}");
    let text = message(response);
    for needle in needles {
        assert!(text.contains(needle), "'{needle}' not in: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_the_policies_grant_is_allowed() {
    let usage = usage(0);
    let addr = serve(usage.clone(), FailurePolicy::Fail).await;
    let review = create(Some("gold"), "5Gi");
    let response = ask(addr, &review).await;
    assert_allowed(&response);
    assert!(response.get("warnings").is_none(), "{response}");
    // The quota policy was asked with the claim's namespace and name.
    assert_eq!(usage.calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        *usage.last.lock().unwrap(),
        Some(("shop".to_owned(), "data".to_owned()))
    );
    // A class without a quota policy needs no usage.
    assert_allowed(&ask(addr, &create(Some("bare"), "5Gi")).await);
    assert_eq!(usage.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_denials_with_the_policys_message() {
    let addr = serve(usage(18 * GIB), FailurePolicy::Ignore).await;
    // Durability: the class caps a volume at 10 GiB.
    let response = ask(addr, &create(Some("gold"), "12Gi")).await;
    assert_denied(
        &response,
        403,
        &["durability policy 'classes'", "more than the 10GiB limit"],
    );
    assert_eq!(response["status"]["reason"], "Forbidden");
    // Quota: 18 GiB in use of 20 GiB. A refusal is no failure: Ignore
    // does not let it through.
    let response = ask(addr, &create(Some("gold"), "5Gi")).await;
    assert_denied(
        &response,
        403,
        &["quota policy 'namespace-quota'", "namespace shop", "20GiB"],
    );
    // The default class decides for a claim that names none.
    let response = ask(addr, &create(None, "12Gi")).await;
    assert_denied(&response, 403, &["durability policy 'classes'"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_aplo_cannot_provision_is_invalid() {
    let addr = serve(usage(0), FailurePolicy::Ignore).await;
    let mut review = create(Some("gold"), "1Gi");
    review["request"]["object"]["spec"]["volumeMode"] = json!("Block");
    let response = ask(addr, &review).await;
    assert_denied(&response, 422, &["StorageClass 'gold'", "Filesystem only"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_that_are_not_aplos_pass_untouched() {
    let usage = usage(1000 * GIB);
    let addr = serve(usage.clone(), FailurePolicy::Fail).await;
    // Another provisioner's class: not checked, however large.
    assert_allowed(&ask(addr, &create(Some("nfs"), "500Gi")).await);
    // No class at all.
    assert_allowed(&ask(addr, &create(Some(""), "500Gi")).await);
    // Pre-bound to an existing PV: nothing is provisioned.
    let mut prebound = create(Some("gold"), "500Gi");
    prebound["request"]["object"]["spec"]["volumeName"] = json!("static-pv");
    assert_allowed(&ask(addr, &prebound).await);
    // A class that does not exist: allowed, with a warning saying so.
    let response = ask(addr, &create(Some("missing"), "500Gi")).await;
    assert_eq!(response["allowed"], true, "{response}");
    let warning = response["warnings"][0].as_str().unwrap_or_default();
    assert!(
        warning.contains("StorageClass 'missing' does not exist"),
        "{response}"
    );
    // DELETE is not reviewed.
    let mut delete = create(Some("gold"), "500Gi");
    delete["request"]["operation"] = json!("DELETE");
    delete["request"]["oldObject"] = delete["request"]["object"].take();
    assert_allowed(&ask(addr, &delete).await);
    assert_eq!(usage.calls.load(Ordering::SeqCst), 0, "no policy was asked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_growing_update_is_checked_against_quota_for_the_new_size() {
    // 10 GiB of other volumes in the namespace, 20 GiB allowed.
    let usage = usage(10 * GIB);
    let addr = serve(usage.clone(), FailurePolicy::Fail).await;
    let review = fixture("update-grow.json");
    assert_allowed(&ask(addr, &review).await);
    assert_eq!(usage.calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        *usage.last.lock().unwrap(),
        Some(("shop".to_owned(), "data".to_owned()))
    );
    // 10 + 12 > 20. Growing past the class's 10 GiB durability cap is not
    // checked, as the engine's expansion does not ask durability.
    let response = ask(addr, &update("5Gi", "12Gi")).await;
    assert_denied(
        &response,
        403,
        &["quota policy 'namespace-quota'", "would claim 22GiB"],
    );
    let calls = usage.calls.load(Ordering::SeqCst);
    // Unchanged (a label edit) and shrinking: allowed, nothing asked, even
    // far over quota.
    let mut relabel = update("50Gi", "50Gi");
    relabel["request"]["object"]["metadata"]["labels"] = json!({"tier": "gold"});
    assert_allowed(&ask(addr, &relabel).await);
    assert_allowed(&ask(addr, &update("50Gi", "40Gi")).await);
    assert_eq!(usage.calls.load(Ordering::SeqCst), calls);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looping_policy_fails_closed_or_open_as_configured() {
    let review = create(Some("slow"), "1Gi");
    let expected = [
        "StorageClass 'slow'",
        "policy 'looper'",
        "durability",
        "timed out",
    ];

    let fail = serve(usage(0), FailurePolicy::Fail).await;
    let started = Instant::now();
    let response = ask(fail, &review).await;
    assert!(
        started.elapsed() < LOOP_DEADLINE * 20,
        "answered after {:?}",
        started.elapsed()
    );
    assert_denied(&response, 500, &expected);
    assert_eq!(response["status"]["reason"], "InternalError");

    let ignore = serve(usage(0), FailurePolicy::Ignore).await;
    let response = ask(ignore, &review).await;
    assert_eq!(response["allowed"], true, "{response}");
    let warning = response["warnings"][0].as_str().unwrap_or_default();
    assert!(warning.contains("failure policy Ignore"), "{warning}");
    for needle in expected {
        assert!(warning.contains(needle), "'{needle}' not in: {warning}");
    }
    // The webhook still answers normally after the fault.
    assert_allowed(&ask(fail, &create(Some("gold"), "1Gi")).await);
}

/// How long `stuck` runs before its deadline stops it.
const STUCK_DEADLINE: Duration = Duration::from_secs(2);

/// The bundled policies plus `stuck` (the looping policy with a long
/// deadline), in a runtime of one instance slot: one stuck call fills it.
fn stuck_registry() -> (Arc<Registry>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a policy directory");
    std::fs::write(dir.path().join("stuck.wasm"), looping::policy()).unwrap();
    let runtime = Arc::new(
        Runtime::new(RuntimeConfig {
            pool_slots: 1,
            ..RuntimeConfig::default()
        })
        .expect("a runtime"),
    );
    let config = RegistryConfig {
        dir: Some(dir.path().to_owned()),
        limits: BTreeMap::from([(
            "stuck".to_owned(),
            Limits {
                deadline: STUCK_DEADLINE,
                ..Limits::default()
            },
        )]),
        ..RegistryConfig::default()
    };
    let registry = Registry::open(runtime, config).expect("the registry opens");
    registry.get("stuck").expect("the stuck policy loads");
    (Arc::new(registry), dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_review_is_answered_in_time_even_with_policies_stuck_and_the_pool_full() {
    let (registry, _dir) = stuck_registry();
    let runtime = registry.runtime().clone();
    let within = Duration::from_millis(300);
    let options = |failure_policy| AdmissionOptions {
        failure_policy,
        answer_within: within,
        ..AdmissionOptions::default()
    };
    let fail = serve_with(registry.clone(), usage(0), options(FailurePolicy::Fail)).await;
    let ignore = serve_with(registry.clone(), usage(0), options(FailurePolicy::Ignore)).await;

    // A policy that runs past the webhook's bound: the failure policy
    // answers at the bound, naming the class and the bound.
    let started = Instant::now();
    let response = ask(fail, &create(Some("stuck"), "1Gi")).await;
    let took = started.elapsed();
    assert!(
        took >= within && took < within * 3,
        "answered after {took:?}"
    );
    assert_denied(
        &response,
        500,
        &["StorageClass 'stuck'", "no answer within 300 ms"],
    );

    // The stuck call still holds the only instance slot: the next review's
    // policy call waits for a slot no longer than its deadline, then the
    // failure policy answers with a busy fault that names the pool.
    let waited = Instant::now();
    while runtime.slots_in_use() == 0 {
        assert!(
            waited.elapsed() < STUCK_DEADLINE / 2,
            "the stuck call never ran"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let busy = [
        "policy 'classes'",
        "all 1 policy instance slots stayed busy",
        "try again later",
    ];
    let started = Instant::now();
    let response = ask(fail, &create(Some("gold"), "1Gi")).await;
    assert!(
        started.elapsed() < within,
        "answered after {:?}",
        started.elapsed()
    );
    assert_denied(&response, 500, &busy);
    let response = ask(ignore, &create(Some("gold"), "1Gi")).await;
    assert_eq!(response["allowed"], true, "{response}");
    let warning = response["warnings"][0].as_str().unwrap_or_default();
    for needle in busy {
        assert!(warning.contains(needle), "'{needle}' not in: {warning}");
    }

    // Once the stuck call ends at its deadline, reviews are decided again.
    let freed = Instant::now();
    while runtime.slots_in_use() > 0 {
        assert!(
            freed.elapsed() < STUCK_DEADLINE * 5,
            "the slot was never freed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_allowed(&ask(fail, &create(Some("gold"), "1Gi")).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_usage_is_a_failure_not_a_refusal() {
    let unknown = Arc::new(FixedUsage::default());
    let addr = serve(unknown.clone(), FailurePolicy::Fail).await;
    let response = ask(addr, &create(Some("gold"), "1Gi")).await;
    assert_denied(&response, 500, &["'namespace-quota'", "does not know yet"]);
    let addr = serve(unknown, FailurePolicy::Ignore).await;
    let response = ask(addr, &create(Some("gold"), "1Gi")).await;
    assert_eq!(response["allowed"], true, "{response}");
    assert!(response["warnings"][0].is_string(), "{response}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_reviews_get_400_with_a_reason() {
    let addr = serve(usage(0), FailurePolicy::Fail).await;
    let mut v1beta1 = create(Some("gold"), "1Gi");
    v1beta1["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let mut no_uid = create(Some("gold"), "1Gi");
    no_uid["request"].as_object_mut().unwrap().remove("uid");
    let mut no_object = create(Some("gold"), "1Gi");
    no_object["request"]["object"] = Value::Null;
    let cases = [
        (b"this is not JSON".to_vec(), "not JSON"),
        (b"".to_vec(), "not JSON"),
        (
            fixture("pod-create.json").to_string().into_bytes(),
            "not group '' version 'v1' kind 'Pod'",
        ),
        (
            fixture("no-request.json").to_string().into_bytes(),
            "no request",
        ),
        (
            v1beta1.to_string().into_bytes(),
            "expected an admission.k8s.io/v1 AdmissionReview",
        ),
        (no_uid.to_string().into_bytes(), "missing field `uid`"),
        (no_object.to_string().into_bytes(), "has no object"),
        (
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                   "request": {"uid": "u", "operation": "CREATE",
                     "kind": {"group": "", "version": "v1", "kind": "PersistentVolumeClaim"},
                     "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {}}}})
            .to_string()
            .into_bytes(),
            "request.object",
        ),
    ];
    for (body, needle) in cases {
        let reply = post(addr, &body).await;
        assert_eq!(reply.status, 400, "{needle}: {}", reply.body);
        assert!(
            reply
                .header("content-type")
                .unwrap_or_default()
                .starts_with("text/plain"),
            "{needle}"
        );
        assert!(
            reply.body.contains(needle),
            "'{needle}' not in: {}",
            reply.body
        );
    }
    // Too large a body is refused before it is read: only the head of a
    // 4 MiB request is sent, and the answer must come without the body.
    // (Sending the body too races the server's close: the client's write
    // can fail with a broken pipe, or the reset discard the answer.)
    let head = format!(
        "POST /admission/pvc HTTP/1.1\r\nHost: aplo.aplo-system.svc\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        4 << 20
    );
    let stream = TcpStream::connect(addr).await.unwrap();
    let reply = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        exchange(stream, head.as_bytes()),
    )
    .await
    .expect("a 413 without waiting for the body");
    assert_eq!(reply.status, 413, "{}", reply.body);
    // The server is still there.
    assert_allowed(&ask(addr, &create(Some("nfs"), "1Gi")).await);
}

/// A CA and a way to issue server certificates for `localhost` from it.
struct Ca {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl Ca {
    fn new() -> Ca {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "aplo test CA");
        let key = rcgen::KeyPair::generate().unwrap();
        Ca {
            issuer: rcgen::CertifiedIssuer::self_signed(params, key).unwrap(),
        }
    }

    /// Write a new certificate and key to `cert`, `key`; returns the
    /// certificate's DER.
    fn issue(&self, cert: &Path, key: &Path) -> Vec<u8> {
        let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        let pair = rcgen::KeyPair::generate().unwrap();
        let issued = params.signed_by(&pair, &self.issuer).unwrap();
        std::fs::write(cert, issued.pem()).unwrap();
        std::fs::write(key, pair.serialize_pem()).unwrap();
        issued.der().to_vec()
    }

    fn connector(&self) -> tokio_rustls::TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.issuer.der().clone()).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }
}

/// Connect over TLS, verifying the server for `localhost`; returns the
/// stream and the certificate the server presented.
async fn connect_tls(
    connector: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
) -> (tokio_rustls::client::TlsStream<TcpStream>, Vec<u8>) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.expect("a TLS handshake");
    let presented = tls.get_ref().1.peer_certificates().expect("a certificate")[0].to_vec();
    (tls, presented)
}

/// The certificate a new connection gets, once it is `wanted` (or the
/// last one seen after `timeout`).
async fn served_cert(
    connector: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
    wanted: &[u8],
    timeout: Duration,
) -> Vec<u8> {
    let deadline = Instant::now() + timeout;
    loop {
        let (_, presented) = connect_tls(connector, addr).await;
        if presented == wanted || Instant::now() > deadline {
            return presented;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_reviews_and_picks_up_a_renewed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key): (PathBuf, PathBuf) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let ca = Ca::new();
    let first = ca.issue(&cert, &key);
    let state = AdmissionState::new(
        registry(),
        Arc::new(classes()),
        usage(0),
        AdmissionOptions::default(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let interval = Duration::from_millis(100);
    let server = tokio::spawn(aplo::http::tls::serve_tls_every(
        listener,
        router(state),
        cert.clone(),
        key.clone(),
        interval,
        async move {
            let _ = stopped.await;
        },
    ));
    let connector = ca.connector();

    // A review over HTTPS, answered with the first certificate.
    let (tls, presented) = connect_tls(&connector, addr).await;
    assert!(presented == first, "not the certificate on disk");
    let review = create(Some("gold"), "12Gi");
    let response = answer(
        &send(tls, review.to_string().as_bytes()).await,
        &uid(&review),
    );
    assert_denied(&response, 403, &["durability policy 'classes'"]);

    // A broken renewal keeps the old certificate.
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\ngarbage\n").unwrap();
    tokio::time::sleep(interval * 5).await;
    assert!(
        served_cert(&connector, addr, &first, interval).await == first,
        "a broken renewal replaced the certificate"
    );

    // A good renewal is served without a restart.
    let second = ca.issue(&cert, &key);
    assert_ne!(first, second);
    let presented = served_cert(&connector, addr, &second, Duration::from_secs(10)).await;
    assert!(presented == second, "the renewed certificate is not served");
    let (tls, _) = connect_tls(&connector, addr).await;
    let review = create(Some("gold"), "1Gi");
    assert_allowed(&answer(
        &send(tls, review.to_string().as_bytes()).await,
        &uid(&review),
    ));

    // Shutdown ends the server.
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server stops")
        .unwrap()
        .expect("the server ends cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_refuses_to_start_with_unusable_files() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let ca = Ca::new();
    ca.issue(&cert, &key);
    // A key that belongs to another certificate.
    let other_key = dir.path().join("other.key");
    ca.issue(&dir.path().join("other.crt"), &other_key);
    for (cert, key, needle) in [
        (cert.clone(), other_key, "does not fit"),
        (cert.clone(), dir.path().join("absent.key"), "absent.key"),
        (key.clone(), key.clone(), "holds no CERTIFICATE block"),
    ] {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let error = aplo::http::tls::serve_tls(listener, axum::Router::new(), cert, key, async {})
            .await
            .expect_err("unusable files are refused");
        assert!(error.to_string().contains(needle), "{needle}: {error}");
    }
}
