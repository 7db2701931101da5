//! The Kubernetes manifests under `deploy/`: rendered with `kubectl
//! kustomize`, validated offline against the Kubernetes 1.33 JSON schemas,
//! and checked for what the schemas cannot see: least-privilege RBAC,
//! references that resolve, an in-tree overlay that patches every class,
//! and a command line, configuration, topology and StorageClasses that aplo
//! itself accepts.
//!
//! Needs `kubectl` (for its built-in kustomize) and `python3` with `venv`:
//! the validator, `kubernetes-validate` from PyPI, is installed into a
//! virtualenv under the target directory on first use. A missing tool
//! fails the test with the reason; nothing is skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use aplo::front::claim::VolumeSource;
use clap::{CommandFactory, Parser};
use k8s_openapi::api::storage::v1::StorageClass;
use serde::Deserialize;
use serde_json::Value;

/// The Kubernetes version whose schemas the manifests must satisfy.
/// `kubernetes-validate` 1.37.0 ships schemas for 1.25 to 1.37.
const KUBERNETES_VERSION: &str = "1.33.0";
/// The oldest version the validator knows; the in-tree overlay is for
/// clusters older than 1.26, so it is validated against this one too.
const OLDEST_KUBERNETES_VERSION: &str = "1.25.0";
/// The validator, pinned so that a new release cannot change the verdict.
const VALIDATOR: &str = "kubernetes-validate==1.37.0";

/// Every API call the controller makes, as `(API group, resource, verb)`.
/// The ClusterRole and Role must grant exactly these: nothing missing,
/// nothing more, no wildcards.
///
/// Written from the design (issue #4) and the calls in `host/src/kube/`
/// (reflectors on classes, claims and volumes; the orphan sweep's gets;
/// the event recorder; the node lookup for `WaitForFirstConsumer`; the
/// Lease). `the_rbac_allows_every_call_of_a_live_run_and_no_more` checks
/// it against the API server's request log of a live run.
const CLUSTER_CALLS: &[(&str, &str, &str)] = &[
    ("", "persistentvolumeclaims", "get"),
    ("", "persistentvolumeclaims", "list"),
    ("", "persistentvolumeclaims", "watch"),
    ("", "persistentvolumeclaims/status", "patch"),
    ("", "persistentvolumes", "get"),
    ("", "persistentvolumes", "list"),
    ("", "persistentvolumes", "watch"),
    ("", "persistentvolumes", "create"),
    ("", "persistentvolumes", "patch"),
    ("", "persistentvolumes", "delete"),
    ("storage.k8s.io", "storageclasses", "list"),
    ("storage.k8s.io", "storageclasses", "watch"),
    ("events.k8s.io", "events", "create"),
    ("events.k8s.io", "events", "patch"),
    ("", "nodes", "get"),
];

/// The calls made in aplo's own namespace (leader election).
const NAMESPACE_CALLS: &[(&str, &str, &str)] = &[
    ("coordination.k8s.io", "leases", "get"),
    ("coordination.k8s.io", "leases", "create"),
    ("coordination.k8s.io", "leases", "update"),
    // The leader labels its own pod with its role (the Service selects it).
    ("", "pods", "patch"),
];

const NAMESPACE: &str = "aplo-system";
const SERVICE_ACCOUNT: &str = "aplo";
const PROVISIONER: &str = "glusterfs.aplo.dev";
/// The one object the Deployment may reference without the manifests
/// defining it: the SSH key, created by the operator (deploy/README.md).
const EXTERNAL_SECRET: &str = "aplo-ssh";
/// The other one: the admission webhook's certificate, made by cert-manager
/// or by hand (deploy/README.md).
const WEBHOOK_SECRET: &str = "aplo-webhook-tls";
/// heketi's JWT keys for the REST API; optional, made by the operator.
const API_KEYS_SECRET: &str = "aplo-api-keys";
/// What the in-tree overlay adds to every StorageClass.
const IN_TREE_PARAMETERS: &[(&str, &str)] = &[
    ("volumeSource", "glusterfs"),
    ("endpoints", "glusterfs-cluster"),
    ("endpointsNamespace", NAMESPACE),
];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the aplo-e2e crate sits in the repository")
}

/// Run a command, failing the test with its output when it cannot start
/// or exits non-zero.
fn run(command: &mut Command, what: &str, hint: &str) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {command:?}: {e}. {hint}"));
    assert!(
        output.status.success(),
        "{what}: {command:?} exited with {}. {hint}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    output
}

/// `kubectl kustomize deploy/<dir>`, as its text.
fn render_text(dir: &str) -> String {
    let output = run(
        Command::new("kubectl")
            .arg("kustomize")
            .arg(repo().join("deploy").join(dir)),
        &format!("rendering deploy/{dir}"),
        "These tests need kubectl (its built-in kustomize renders the manifests); \
         install it and put it on PATH.",
    );
    String::from_utf8(output.stdout).expect("kustomize prints UTF-8")
}

/// The rendered objects of `deploy/<dir>`.
fn render(dir: &str) -> Vec<Value> {
    parse_objects(&render_text(dir))
}

fn parse_objects(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|doc| Value::deserialize(doc).expect("kustomize prints valid YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

fn kind(object: &Value) -> &str {
    object["kind"].as_str().unwrap_or_default()
}

fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

fn namespace(object: &Value) -> &str {
    object["metadata"]["namespace"].as_str().unwrap_or_default()
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn only<'a>(objects: &'a [Value], wanted: &str, called: &str) -> &'a Value {
    let found: Vec<&Value> = objects
        .iter()
        .filter(|o| kind(o) == wanted && name(o) == called)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one {wanted} named {called} in the rendered manifests"
    );
    found[0]
}

fn of_kind<'a>(objects: &'a [Value], wanted: &'a str) -> impl Iterator<Item = &'a Value> {
    objects.iter().filter(move |o| kind(o) == wanted)
}

/// A virtualenv under the target directory with the pinned validator;
/// created on first use. Returns its Python.
fn validator_python() -> PathBuf {
    // Tests of this process share one install.
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(install_validator).clone()
}

fn install_validator() -> PathBuf {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("deploy-venv");
    let python = venv.join("bin").join("python");
    let installed = |python: &Path| {
        let pinned = VALIDATOR.split("==").nth(1).expect("a pinned version");
        Command::new(python)
            .args(["-m", "kubernetes_validate", "--version"])
            .output()
            .is_ok_and(|o| {
                o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == pinned
            })
    };
    if installed(&python) {
        return python;
    }
    // Build it beside the final place and rename it there, so that test
    // processes running at once (nextest) never see a half-installed one.
    let building = venv.with_extension(format!("building-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&building);
    run(
        Command::new("python3").arg("-m").arg("venv").arg(&building),
        "creating the validator's virtualenv",
        "These tests need python3 with its venv module (on Debian: apt-get install python3-venv).",
    );
    run(
        Command::new(building.join("bin").join("python")).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            VALIDATOR,
        ]),
        &format!("installing {VALIDATOR} from PyPI"),
        "The schemas come with this package; PyPI must be reachable the first time.",
    );
    if venv.exists() && !installed(&python) {
        // Left broken, or with another version of the validator.
        let _ = std::fs::remove_dir_all(&venv);
    }
    if std::fs::rename(&building, &venv).is_err() {
        // Another test process finished first; use its copy.
        let _ = std::fs::remove_dir_all(&building);
    }
    assert!(
        installed(&python),
        "{VALIDATOR} is not usable in {}",
        venv.display()
    );
    python
}

/// Validate every rendered object of `deploy/<dir>` against the schemas of
/// `version`, strictly (unknown fields are errors).
fn validate(dir: &str, version: &str) {
    let text = render_text(dir);
    let count = parse_objects(&text).len();
    let scratch = tempfile::tempdir().expect("a temporary directory");
    let file = scratch
        .path()
        .join(format!("{}.yaml", dir.replace('/', "-")));
    std::fs::write(&file, &text).expect("writing the rendered manifests");
    let output = Command::new(validator_python())
        .args(["-m", "kubernetes_validate", "--strict", "--no-warn"])
        .args(["--kubernetes-version", version])
        .arg(&file)
        .output()
        .expect("running kubernetes-validate");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "deploy/{dir} does not validate against Kubernetes {version}:\n{report}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let passed = report
        .lines()
        .filter(|l| l.contains(" passed for resource "))
        .count();
    assert_eq!(
        passed, count,
        "deploy/{dir}: {count} objects rendered but {passed} validated:\n{report}"
    );
}

#[test]
fn the_base_validates_against_the_kubernetes_schemas() {
    validate("base", KUBERNETES_VERSION);
}

#[test]
fn the_in_tree_overlay_validates_against_old_and_current_schemas() {
    validate("overlays/in-tree", KUBERNETES_VERSION);
    validate("overlays/in-tree", OLDEST_KUBERNETES_VERSION);
}

type Grant = (String, String, String);

fn grants(role: &Value) -> BTreeSet<Grant> {
    let mut grants = BTreeSet::new();
    let rules = role["rules"].as_array().cloned().unwrap_or_default();
    for rule in &rules {
        let what = format!("{} {}: {rule}", kind(role), name(role));
        assert!(
            rule.get("nonResourceURLs").is_none(),
            "{what}: grants non-resource URLs"
        );
        assert!(
            rule.get("resourceNames").is_none(),
            "{what}: resourceNames is not in the list of calls"
        );
        let (groups, resources, verbs) = (
            strings(&rule["apiGroups"]),
            strings(&rule["resources"]),
            strings(&rule["verbs"]),
        );
        for field in [&groups, &resources, &verbs] {
            assert!(
                !field.is_empty(),
                "{what}: a rule without groups, resources or verbs"
            );
            assert!(
                !field.iter().any(|s| s.contains('*')),
                "{what}: wildcards grant more than the controller uses"
            );
        }
        for group in &groups {
            for resource in &resources {
                for verb in &verbs {
                    let grant = (
                        (*group).to_owned(),
                        (*resource).to_owned(),
                        (*verb).to_owned(),
                    );
                    assert!(
                        grants.insert(grant),
                        "{what}: {group}/{resource} {verb} granted twice"
                    );
                }
            }
        }
    }
    grants
}

fn expected(calls: &[(&str, &str, &str)]) -> BTreeSet<Grant> {
    calls
        .iter()
        .map(|(g, r, v)| ((*g).to_owned(), (*r).to_owned(), (*v).to_owned()))
        .collect()
}

fn assert_bound(objects: &[Value], binding_kind: &str, role_kind: &str, role: &str) {
    let bindings: Vec<&Value> = of_kind(objects, binding_kind)
        .filter(|b| b["roleRef"]["name"] == role)
        .collect();
    assert_eq!(
        bindings.len(),
        1,
        "{role_kind} {role} needs exactly one {binding_kind}"
    );
    let binding = bindings[0];
    assert_eq!(binding["roleRef"]["kind"], role_kind);
    assert_eq!(binding["roleRef"]["apiGroup"], "rbac.authorization.k8s.io");
    let subjects = binding["subjects"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        subjects,
        vec![
            serde_json::json!({"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": NAMESPACE})
        ],
        "{binding_kind} {}: binds someone other than the ServiceAccount",
        name(binding)
    );
}

#[test]
fn rbac_grants_exactly_the_calls_the_controller_makes() {
    for dir in ["base", "overlays/in-tree"] {
        let objects = render(dir);
        let cluster_roles: Vec<&str> = of_kind(&objects, "ClusterRole").map(name).collect();
        let roles: Vec<&str> = of_kind(&objects, "Role").map(name).collect();
        assert_eq!(
            cluster_roles,
            ["aplo-provisioner"],
            "deploy/{dir}: ClusterRoles"
        );
        assert_eq!(roles, ["aplo-leader-election"], "deploy/{dir}: Roles");

        let cluster = only(&objects, "ClusterRole", "aplo-provisioner");
        assert!(
            cluster.get("aggregationRule").is_none(),
            "aggregation would add rules"
        );
        assert_eq!(
            grants(cluster),
            expected(CLUSTER_CALLS),
            "deploy/{dir}: ClusterRole aplo-provisioner"
        );
        let role = only(&objects, "Role", "aplo-leader-election");
        assert_eq!(namespace(role), NAMESPACE);
        assert_eq!(
            grants(role),
            expected(NAMESPACE_CALLS),
            "deploy/{dir}: Role aplo-leader-election"
        );

        assert_bound(
            &objects,
            "ClusterRoleBinding",
            "ClusterRole",
            "aplo-provisioner",
        );
        assert_bound(&objects, "RoleBinding", "Role", "aplo-leader-election");
        let binding = only(&objects, "RoleBinding", "aplo-leader-election");
        assert_eq!(namespace(binding), NAMESPACE);
        let account = only(&objects, "ServiceAccount", SERVICE_ACCOUNT);
        assert_eq!(namespace(account), NAMESPACE);
    }
}

/// The names of the ConfigMaps, Secrets and claims a pod spec uses, by kind.
fn pod_references(pod: &Value) -> BTreeSet<(&'static str, String)> {
    let mut refs = BTreeSet::new();
    let mut add = |kind: &'static str, value: &Value| {
        if let Some(name) = value.as_str() {
            refs.insert((kind, name.to_owned()));
        }
    };
    add("ServiceAccount", &pod["serviceAccountName"]);
    for volume in pod["volumes"].as_array().into_iter().flatten() {
        add("ConfigMap", &volume["configMap"]["name"]);
        add("Secret", &volume["secret"]["secretName"]);
        add(
            "PersistentVolumeClaim",
            &volume["persistentVolumeClaim"]["claimName"],
        );
        for source in volume["projected"]["sources"]
            .as_array()
            .into_iter()
            .flatten()
        {
            add("ConfigMap", &source["configMap"]["name"]);
            add("Secret", &source["secret"]["name"]);
        }
    }
    for list in ["initContainers", "containers"] {
        for container in pod[list].as_array().into_iter().flatten() {
            for from in container["envFrom"].as_array().into_iter().flatten() {
                add("ConfigMap", &from["configMapRef"]["name"]);
                add("Secret", &from["secretRef"]["name"]);
            }
            for env in container["env"].as_array().into_iter().flatten() {
                add("ConfigMap", &env["valueFrom"]["configMapKeyRef"]["name"]);
                add("Secret", &env["valueFrom"]["secretKeyRef"]["name"]);
            }
        }
    }
    for secret in pod["imagePullSecrets"].as_array().into_iter().flatten() {
        add("Secret", &secret["name"]);
    }
    refs
}

#[test]
fn the_deployment_references_only_what_the_manifests_define() {
    for dir in ["base", "overlays/in-tree"] {
        let objects = render(dir);
        let deployment = only(&objects, "Deployment", "aplo");
        assert_eq!(namespace(deployment), NAMESPACE);
        let defined: BTreeSet<(&str, String)> = objects
            .iter()
            .filter(|o| namespace(o) == NAMESPACE)
            .map(|o| (kind(o), name(o).to_owned()))
            .collect();
        let pod = &deployment["spec"]["template"]["spec"];
        let references = pod_references(pod);
        for reference in &references {
            if [EXTERNAL_SECRET, WEBHOOK_SECRET, API_KEYS_SECRET]
                .iter()
                .any(|s| *reference == ("Secret", (*s).to_owned()))
            {
                continue;
            }
            assert!(
                defined.contains(&(reference.0, reference.1.clone())),
                "deploy/{dir}: the Deployment uses {} {} in {NAMESPACE}, which is not in the manifests",
                reference.0,
                reference.1
            );
        }
        // The SSH key is the operator's: referenced, required, never shipped.
        assert!(references.contains(&("Secret", EXTERNAL_SECRET.to_owned())));
        assert!(references.contains(&("Secret", WEBHOOK_SECRET.to_owned())));
        assert!(
            !of_kind(&objects, "Secret").any(|s| name(s) == WEBHOOK_SECRET),
            "the webhook's key must not be in the manifests"
        );
        assert!(
            !of_kind(&objects, "Secret").any(|s| name(s) == EXTERNAL_SECRET),
            "the SSH key must not be in the manifests"
        );
        assert!(
            !of_kind(&objects, "Secret").any(|s| name(s) == API_KEYS_SECRET),
            "the API keys must not be in the manifests"
        );
        let ssh = pod["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["secret"]["secretName"] == EXTERNAL_SECRET)
            .expect("the ssh volume");
        assert_eq!(ssh["secret"]["optional"], false, "the SSH key is required");
        // Every generated ConfigMap the base defines is used.
        for config_map in ["aplo-config", "aplo-topology", "aplo-policies"] {
            assert!(
                references
                    .iter()
                    .any(|(k, n)| *k == "ConfigMap" && n.starts_with(&format!("{config_map}-"))),
                "deploy/{dir}: the Deployment does not mount {config_map}"
            );
        }
    }
}

#[test]
fn the_deployment_runs_two_unprivileged_replicas_that_elect_a_leader() {
    let objects = render("base");
    let deployment = only(&objects, "Deployment", "aplo");
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"], 2);
    let pod = &spec["template"]["spec"];
    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1);
    let container = &containers[0];
    assert_eq!(
        strings(&container["args"]),
        [
            "serve",
            "--provisioner-name=glusterfs.aplo.dev",
            "--lease-namespace=$(POD_NAMESPACE)",
            "--identity=$(POD_NAME)",
            "--listen=0.0.0.0:8080",
            "--tls-listen=0.0.0.0:8443",
            "--tls-cert=/etc/aplo/tls/tls.crt",
            "--tls-key=/etc/aplo/tls/tls.key",
            "--admission-failure-policy=Fail",
        ]
    );
    let env: BTreeMap<&str, &Value> = container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| (e["name"].as_str().unwrap_or_default(), e))
        .collect();
    assert_eq!(
        env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    assert_eq!(
        env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );
    for (key, value) in [
        ("APLO_CONFIG", "/etc/aplo/config.yaml"),
        ("APLO_DB", "/var/lib/aplo/aplo.redb"),
        ("APLO_POLICY_DIR", "/etc/aplo/policies"),
        ("APLO_LOG_FORMAT", "json"),
    ] {
        assert_eq!(env[key]["value"], value, "{key}");
    }
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(
        container["readinessProbe"]["httpGet"]["path"],
        "/readyz?standby=ok"
    );
    for key in ["APLO_ADMIN_KEY", "APLO_USER_KEY"] {
        let secret = &env[key]["valueFrom"]["secretKeyRef"];
        assert_eq!(secret["name"], "aplo-api-keys", "{key}");
        assert_eq!(secret["optional"], true, "{key}");
    }

    let security = &container["securityContext"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(strings(&security["capabilities"]["drop"]), ["ALL"]);
    assert!(security["capabilities"].get("add").is_none());
    assert_ne!(security["privileged"], true);
    assert!(pod.get("hostNetwork").is_none() && pod.get("hostPID").is_none());
    for resource in ["requests", "limits"] {
        assert!(
            container["resources"][resource]["memory"].is_string(),
            "memory {resource}"
        );
    }

    // Both replicas see one store.
    let claim = only(&objects, "PersistentVolumeClaim", "aplo-state");
    assert_eq!(strings(&claim["spec"]["accessModes"]), ["ReadWriteMany"]);
    let budget = only(&objects, "PodDisruptionBudget", "aplo");
    assert_eq!(budget["spec"]["minAvailable"], 1);
    assert_eq!(
        budget["spec"]["selector"]["matchLabels"],
        spec["selector"]["matchLabels"]
    );
}

#[test]
fn the_webhook_calls_the_port_and_path_the_deployment_serves() {
    for dir in ["base", "overlays/in-tree"] {
        let objects = render(dir);
        let configs: Vec<&Value> = of_kind(&objects, "ValidatingWebhookConfiguration").collect();
        assert_eq!(configs.len(), 1, "deploy/{dir}: one webhook configuration");
        let hooks = configs[0]["webhooks"].as_array().expect("webhooks");
        assert_eq!(hooks.len(), 1, "deploy/{dir}: one webhook");
        let hook = &hooks[0];
        let what = format!("deploy/{dir}: webhook {}", hook["name"]);
        assert_eq!(hook["failurePolicy"], "Fail", "{what}");
        assert_eq!(hook["sideEffects"], "None", "{what}");
        assert_eq!(strings(&hook["admissionReviewVersions"]), ["v1"], "{what}");
        let timeout = hook["timeoutSeconds"].as_u64().expect("timeoutSeconds");
        assert!(
            (1..=10).contains(&timeout),
            "{what}: timeoutSeconds {timeout}"
        );
        let rules = hook["rules"].as_array().expect("rules");
        assert_eq!(rules.len(), 1, "{what}");
        assert_eq!(strings(&rules[0]["apiGroups"]), [""], "{what}");
        assert_eq!(strings(&rules[0]["apiVersions"]), ["v1"], "{what}");
        assert_eq!(
            strings(&rules[0]["resources"]),
            ["persistentvolumeclaims"],
            "{what}"
        );
        assert_eq!(
            strings(&rules[0]["operations"]),
            ["CREATE", "UPDATE"],
            "{what}"
        );
        // aplo's own store claim must be creatable while aplo is down.
        let excluded = hook["namespaceSelector"]["matchExpressions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| {
                e["key"] == "kubernetes.io/metadata.name"
                    && e["operator"] == "NotIn"
                    && strings(&e["values"]).contains(&NAMESPACE)
            });
        assert!(excluded, "{what}: does not leave {NAMESPACE} out");

        // The Service it calls, on the port it names, reaches the
        // container's webhook port, on the path aplo serves.
        let target = &hook["clientConfig"]["service"];
        assert_eq!(target["path"], aplo::http::admission::PATH, "{what}");
        assert!(hook["clientConfig"].get("url").is_none(), "{what}");
        assert_eq!(target["namespace"], NAMESPACE, "{what}");
        let service = only(
            &objects,
            "Service",
            target["name"].as_str().unwrap_or_default(),
        );
        assert_eq!(namespace(service), NAMESPACE);
        let port = service["spec"]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["port"] == target["port"])
            .unwrap_or_else(|| panic!("{what}: the Service has no port {}", target["port"]));
        let deployment = only(&objects, "Deployment", "aplo");
        let pod = &deployment["spec"]["template"];
        // The Service selects the pods, and among them the leader by the
        // role label the leader sets on its own pod.
        let selector = service["spec"]["selector"].as_object().expect("a selector");
        assert_eq!(
            selector[aplo::kube::leader::ROLE_LABEL],
            "leader",
            "{what}: the Service must reach the leader only"
        );
        for (key, value) in selector {
            if key != aplo::kube::leader::ROLE_LABEL {
                assert_eq!(
                    &pod["metadata"]["labels"][key], value,
                    "{what}: selector {key}"
                );
            }
        }
        let container = &pod["spec"]["containers"][0];
        let served = container["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == port["targetPort"] || p["containerPort"] == port["targetPort"])
            .unwrap_or_else(|| panic!("{what}: no container port {}", port["targetPort"]));
        assert_eq!(served["containerPort"], 8443, "{what}");
        // The certificate is mounted as a directory (so that renewals are
        // seen) from the Secret cert-manager fills.
        let volume = pod["spec"]["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["secret"]["secretName"] == WEBHOOK_SECRET)
            .expect("the webhook certificate volume");
        let mount = container["volumeMounts"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["name"] == volume["name"])
            .expect("the webhook certificate mount");
        assert_eq!(mount["mountPath"], "/etc/aplo/tls", "{what}");
        assert!(
            mount.get("subPath").is_none(),
            "{what}: a subPath never updates"
        );
        assert_eq!(
            configs[0]["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
            format!("{NAMESPACE}/aplo-webhook"),
            "{what}"
        );
    }
    // The README's Certificate makes that Secret, for that Service.
    let readme = std::fs::read_to_string(repo().join("deploy/README.md")).unwrap();
    for needle in [
        "kind: Certificate",
        "name: aplo-webhook",
        "secretName: aplo-webhook-tls",
        "aplo.aplo-system.svc",
    ] {
        assert!(readme.contains(needle), "deploy/README.md lacks '{needle}'");
    }
}

/// Every `--long` flag of the `aplo` command line that an environment
/// variable also sets, by variable name.
fn flags_by_env() -> BTreeMap<String, String> {
    fn walk(command: &clap::Command, flags: &mut BTreeMap<String, String>) {
        for arg in command.get_arguments() {
            if let (Some(env), Some(long)) = (arg.get_env(), arg.get_long()) {
                flags.insert(env.to_string_lossy().into_owned(), long.to_owned());
            }
        }
        for sub in command.get_subcommands() {
            walk(sub, flags);
        }
    }
    let mut flags = BTreeMap::new();
    walk(&aplo::cli::Cli::command(), &mut flags);
    flags
}

#[test]
fn aplo_serve_accepts_the_deployments_arguments_and_environment() {
    let objects = render("base");
    let deployment = only(&objects, "Deployment", "aplo");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    // The kubelet expands `$(VAR)` from the container's environment.
    let mut argv: Vec<String> = vec!["aplo".into()];
    argv.extend(strings(&container["args"]).iter().map(|arg| {
        arg.replace("$(POD_NAMESPACE)", NAMESPACE)
            .replace("$(POD_NAME)", "aplo-5d8f7c9b4-x2x7q")
    }));
    // aplo's own variables, given as the flags they stand for, so that
    // clap checks their values too.
    let flags = flags_by_env();
    for env in container["env"].as_array().into_iter().flatten() {
        let variable = env["name"].as_str().unwrap_or_default();
        if !variable.starts_with("APLO_") {
            continue;
        }
        let flag = flags.get(variable).unwrap_or_else(|| {
            panic!("the Deployment sets {variable}, which no aplo setting reads")
        });
        let value = match env["valueFrom"]["secretKeyRef"]["name"].as_str() {
            // A secret's value is the operator's: stand in a valid one.
            Some(_) => "a-secret-of-32-characters-------",
            None => env["value"]
                .as_str()
                .expect("APLO_* variables are plain values or secrets"),
        };
        argv.push(format!("--{flag}={value}"));
    }
    let cli = aplo::cli::Cli::try_parse_from(&argv)
        .unwrap_or_else(|e| panic!("aplo refuses the Deployment's command line {argv:?}:\n{e}"));
    assert!(
        matches!(cli.command, aplo::cli::Command::Serve(_)),
        "the container runs `aplo serve`"
    );
    // The files those settings name are where the volumes put them.
    let mounts: Vec<(&str, &str)> = container["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            (
                m["mountPath"].as_str().unwrap_or_default(),
                m["subPath"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    for (path, mount) in [
        (
            "/etc/aplo/config.yaml",
            ("/etc/aplo/config.yaml", "config.yaml"),
        ),
        (
            "/etc/aplo/topology/topology.json",
            ("/etc/aplo/topology", ""),
        ),
        ("/etc/aplo/policies", ("/etc/aplo/policies", "")),
        ("/var/lib/aplo/aplo.redb", ("/var/lib/aplo", "")),
    ] {
        assert!(mounts.contains(&mount), "nothing mounts {path}");
    }
}

fn parameters(class: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(class["parameters"].clone()).unwrap_or_else(|e| {
        panic!(
            "StorageClass {}: parameters are not strings: {e}",
            name(class)
        )
    })
}

#[test]
fn the_in_tree_overlay_patches_every_storage_class_and_nothing_else() {
    let base = render("base");
    let overlay = render("overlays/in-tree");
    let base_classes: BTreeMap<&str, &Value> = of_kind(&base, "StorageClass")
        .map(|c| (name(c), c))
        .collect();
    let overlay_classes: BTreeMap<&str, &Value> = of_kind(&overlay, "StorageClass")
        .map(|c| (name(c), c))
        .collect();
    assert!(!base_classes.is_empty());
    assert_eq!(
        base_classes.keys().collect::<Vec<_>>(),
        overlay_classes.keys().collect::<Vec<_>>(),
        "the overlay has the base's StorageClasses"
    );
    for (class, patched) in &overlay_classes {
        let mut want = parameters(base_classes[class]);
        for (key, value) in IN_TREE_PARAMETERS {
            assert!(
                want.insert((*key).to_owned(), (*value).to_owned())
                    .is_none(),
                "the base's StorageClass {class} already sets {key}"
            );
        }
        assert_eq!(
            parameters(patched),
            want,
            "StorageClass {class} in the in-tree overlay"
        );
        let mut rest = (*patched).clone();
        rest["parameters"] = base_classes[class]["parameters"].clone();
        assert_eq!(
            &rest, base_classes[class],
            "the overlay changes only the parameters of {class}"
        );
    }
    // The endpoints the classes name exist, with a Service to keep them.
    let endpoints = only(&overlay, "Endpoints", "glusterfs-cluster");
    assert_eq!(namespace(endpoints), NAMESPACE);
    let addresses = endpoints["subsets"][0]["addresses"]
        .as_array()
        .expect("addresses");
    assert!(!addresses.is_empty());
    let service = only(&overlay, "Service", "glusterfs-cluster");
    assert_eq!(namespace(service), NAMESPACE);
    assert!(
        service["spec"].get("selector").is_none(),
        "a selector would overwrite the Endpoints"
    );
    // Everything else is the base's, unchanged.
    let untouched = |objects: &[Value]| -> Vec<Value> {
        objects
            .iter()
            .filter(|o| kind(o) != "StorageClass" && name(o) != "glusterfs-cluster")
            .cloned()
            .collect()
    };
    assert_eq!(untouched(&overlay), untouched(&base));
}

/// The rendered data entry `key` of the generated ConfigMap `prefix-<hash>`.
fn config_file(objects: &[Value], prefix: &str, key: &str) -> String {
    let config_map = of_kind(objects, "ConfigMap")
        .find(|c| name(c).starts_with(&format!("{prefix}-")))
        .unwrap_or_else(|| panic!("no ConfigMap {prefix}"));
    config_map["data"][key]
        .as_str()
        .unwrap_or_else(|| panic!("ConfigMap {prefix} has no {key}"))
        .to_owned()
}

#[test]
fn aplo_accepts_the_shipped_config_topology_and_storage_classes() {
    let objects = render("overlays/in-tree");
    let scratch = tempfile::tempdir().expect("a temporary directory");
    let config = scratch.path().join("config.yaml");
    std::fs::write(&config, config_file(&objects, "aplo-config", "config.yaml"))
        .expect("writing config.yaml");
    // The same parsing `aplo --config` does; an empty policy directory, as
    // in the base.
    let policies = scratch.path().join("policies");
    std::fs::create_dir(&policies).expect("a policy directory");
    let cli = aplo::cli::Cli::try_parse_from([
        "aplo".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        "--policy-dir".as_ref(),
        policies.as_os_str(),
        "policy".as_ref(),
        "list".as_ref(),
    ])
    .expect("aplo's command line");
    let registry = cli
        .config
        .open_registry()
        .unwrap_or_else(|e| panic!("aplo refuses deploy/base/config/config.yaml: {e:#}"));

    let topology = config_file(&objects, "aplo-topology", "topology.json");
    aplo::model::topology::parse_topology(&topology)
        .unwrap_or_else(|e| panic!("aplo refuses deploy/base/config/topology.json: {e}"));

    let base = render("base");
    let dirs = [("base", &base, false), ("overlays/in-tree", &objects, true)];
    for (dir, objects, in_tree) in dirs {
        for class in of_kind(objects, "StorageClass") {
            let what = format!("deploy/{dir}: StorageClass {}", name(class));
            assert_eq!(class["provisioner"], PROVISIONER, "{what}");
            // The controller's own reading of the class.
            let typed: StorageClass =
                serde_json::from_value(class.clone()).unwrap_or_else(|e| panic!("{what}: {e}"));
            let options = aplo::front::claim::class_options(&typed)
                .unwrap_or_else(|e| panic!("{what}: the controller refuses it: {e}"));
            let source = if in_tree {
                VolumeSource::Glusterfs {
                    endpoints: "glusterfs-cluster".into(),
                    namespace: Some(NAMESPACE.into()),
                }
            } else {
                VolumeSource::Csi
            };
            assert_eq!(options.source, source, "{what}");
            // Every selected policy exists, makes its decision and accepts
            // its settings, in the sandbox, as when a claim first uses it.
            registry
                .resolve(&options.policy_parameters)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
        }
    }
    let classes: Vec<&Value> = of_kind(&objects, "StorageClass").collect();
    let defaults: Vec<&str> = classes
        .iter()
        .filter(|c| {
            c["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
        })
        .map(|c| name(c))
        .collect();
    assert_eq!(
        defaults.len(),
        1,
        "one default StorageClass, not {defaults:?}"
    );
}

/// Calls the RBAC grants that a normal run does not make: the orphan
/// sweep's double checks, made only when a crash left a volume without a
/// PV (covered by `provisioner_crash.rs`).
const RARE_CALLS: &[(&str, &str, &str)] = &[
    ("", "persistentvolumeclaims", "get"),
    ("", "persistentvolumes", "get"),
];

/// A live run against the real API server, as aplo's ServiceAccount with
/// the shipped RBAC applied, its requests read back from the audit log:
/// the server refuses none of the provisioner's calls, each is granted by
/// the shipped RBAC in the right scope, and every grant is used.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_rbac_allows_every_call_of_a_live_run_and_no_more() {
    use aplo_e2e::kube::{Provisioner, World};
    use k8s_openapi::api::core::v1::Node;
    use kube::Api;
    use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
    use std::time::Duration;

    let objects = render("base");
    let cluster = grants(only(&objects, "ClusterRole", "aplo-provisioner"));
    let namespaced = grants(only(&objects, "Role", "aplo-leader-election"));

    let world = World::audited().await;
    let user = format!("system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}");
    let client = world.aplo().await;
    let mut options = Provisioner::options();
    options.lease = Some(aplo::kube::LeaseConfig {
        lease_duration: Duration::from_secs(4),
        renew_deadline: Duration::from_secs(3),
        retry_period: Duration::from_millis(250),
        ..aplo::kube::LeaseConfig::new(NAMESPACE, "aplo", "audit")
    });
    // Its own pod, which it labels with its role.
    let pods: Api<k8s_openapi::api::core::v1::Pod> =
        Api::namespaced(world.client.clone(), NAMESPACE);
    let pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "aplo-audit", "namespace": NAMESPACE, "labels": {"app.kubernetes.io/name": "aplo"}},
        "spec": {
            "serviceAccountName": SERVICE_ACCOUNT,
            "automountServiceAccountToken": false,
            "containers": [{"name": "aplo", "image": "aplo"}]
        }
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    options.pod = Some(aplo::kube::leader::PodRef {
        namespace: NAMESPACE.into(),
        name: "aplo-audit".into(),
    });
    let engine = aplo_e2e::kube::sim_engine(3).await;
    let provisioner = Provisioner::start(client, engine, options);
    let role = |pod: k8s_openapi::api::core::v1::Pod| {
        pod.metadata
            .labels
            .unwrap_or_default()
            .get(aplo::kube::leader::ROLE_LABEL)
            .cloned()
    };

    // Provision (Immediate and WaitForFirstConsumer), refuse, expand, delete.
    world.class("now", &[], "Delete").await;
    world
        .class(
            "capped",
            &[
                ("quota", "namespace-quota"),
                ("namespace-quota.max-volume-size", "1Gi"),
            ],
            "Delete",
        )
        .await;
    let classes: Api<k8s_openapi::api::storage::v1::StorageClass> = Api::all(world.client.clone());
    let mut later = classes.get("now").await.unwrap();
    later.metadata = Default::default();
    later.metadata.name = Some("later".into());
    later.volume_binding_mode = Some("WaitForFirstConsumer".into());
    classes
        .create(&PostParams::default(), &later)
        .await
        .unwrap();
    let node: Node = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "worker-1", "labels": {"topology.kubernetes.io/zone": "1"}}
    }))
    .unwrap();
    Api::<Node>::all(world.client.clone())
        .create(&PostParams::default(), &node)
        .await
        .unwrap();

    world.claim("default", "a", "now", "1Gi").await;
    let mut waiting = aplo_e2e::kube::claim("b", "later", "1Gi");
    waiting.metadata.annotations = Some(
        [(
            aplo::front::claim::ANN_SELECTED_NODE.to_owned(),
            "worker-1".to_owned(),
        )]
        .into(),
    );
    world
        .claims("default")
        .create(&PostParams::default(), &waiting)
        .await
        .unwrap();
    world.claim("default", "too-big", "capped", "2Gi").await;
    world
        .wait_bound(
            "default",
            &["a".into(), "b".into()],
            Duration::from_secs(30),
        )
        .await;
    world
        .wait_event(
            "default",
            "too-big",
            "ProvisioningFailed",
            Duration::from_secs(30),
        )
        .await;
    world
        .claims("default")
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(
                serde_json::json!({"spec": {"resources": {"requests": {"storage": "2Gi"}}}}),
            ),
        )
        .await
        .unwrap();
    world
        .wait_event(
            "default",
            "a",
            "VolumeResizeSuccessful",
            Duration::from_secs(30),
        )
        .await;
    world
        .claims("default")
        .delete("a", &DeleteParams::default())
        .await
        .unwrap();
    world.wait_pvs_at_most(1, Duration::from_secs(30)).await;
    // A repeated refusal is patched into the same event (a series).
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        role(pods.get("aplo-audit").await.unwrap()).as_deref(),
        Some("leader")
    );
    provisioner.stop().await.unwrap();
    assert_eq!(
        role(pods.get("aplo-audit").await.unwrap()).as_deref(),
        Some("standby"),
        "a leader that stops says so on its pod"
    );

    let mut seen = BTreeSet::new();
    let requests = world.k8s.audit();
    assert!(
        requests.iter().any(|r| r.user == user),
        "the audit log has no request by {user}"
    );
    for request in requests {
        if request.user != user {
            continue;
        }
        assert_ne!(
            request.code, 403,
            "the API server refused the provisioner's call: {request:?}"
        );
        let grant = (
            request.group.clone(),
            request.resource.clone(),
            request.verb.clone(),
        );
        let allowed = match request.namespace.as_deref() {
            Some(NAMESPACE) if namespaced.contains(&grant) => true,
            _ => cluster.contains(&grant),
        };
        assert!(
            allowed,
            "the provisioner called {grant:?} in {:?}, which the shipped RBAC does not allow",
            request.namespace
        );
        seen.insert(grant);
    }
    let rare = expected(RARE_CALLS);
    let unused: Vec<&Grant> = cluster
        .union(&namespaced)
        .filter(|g| !seen.contains(*g) && !rare.contains(*g))
        .collect();
    assert!(
        unused.is_empty(),
        "granted but never used in a live run: {unused:?}"
    );
}

#[test]
fn the_csi_sidecars_overlay_validates_against_the_kubernetes_schemas() {
    validate("overlays/csi-sidecars", KUBERNETES_VERSION);
}

/// The container called `name` in a pod spec.
fn container<'a>(pod: &'a Value, called: &str) -> &'a Value {
    pod["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == called)
        .unwrap_or_else(|| panic!("no container {called}"))
}

/// The value of `--flag=value` in a container's arguments.
fn flag<'a>(container: &'a Value, flag: &str) -> Option<&'a str> {
    strings(&container["args"])
        .into_iter()
        .find_map(|a| a.strip_prefix(&format!("{flag}=")))
}

/// Where a container mounts the pod volume `volume`.
fn mount_path<'a>(container: &'a Value, volume: &str) -> Option<&'a str> {
    container["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["name"] == volume)
        .and_then(|m| m["mountPath"].as_str())
}

/// The pod volume mounted at `path` in a container, by name.
fn volume_at<'a>(container: &'a Value, path: &str) -> &'a str {
    container["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| {
            m["mountPath"] == path
                || path.starts_with(&format!("{}/", m["mountPath"].as_str().unwrap_or("-")))
        })
        .and_then(|m| m["name"].as_str())
        .unwrap_or_else(|| panic!("nothing mounts {path}"))
}

/// `aplo` accepts a container's arguments (with `$(VAR)`s expanded) as an
/// `aplo csi` command line.
fn assert_csi_command(container: &Value, what: &str) {
    let mut argv: Vec<String> = vec!["aplo".into()];
    argv.extend(strings(&container["args"]).iter().map(|a| {
        a.replace("$(NODE_NAME)", "node-1")
            .replace("$(POD_IP)", "192.0.2.10")
    }));
    let cli = aplo::cli::Cli::try_parse_from(&argv)
        .unwrap_or_else(|e| panic!("{what}: aplo refuses {argv:?}:\n{e}"));
    assert!(
        matches!(cli.command, aplo::cli::Command::Csi(_)),
        "{what}: runs `aplo csi`"
    );
}

/// The sidecar images are pinned to a release, not a moving tag.
fn assert_pinned(container: &Value) {
    let image = container["image"].as_str().unwrap_or_default();
    let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or_default();
    assert!(
        image.starts_with("registry.k8s.io/sig-storage/")
            && tag.starts_with('v')
            && tag.contains('.'),
        "{image} is not a pinned sig-storage release"
    );
}

#[test]
fn the_csi_driver_and_node_plugin_match_what_kubelet_needs() {
    for dir in ["base", "overlays/in-tree", "overlays/csi-sidecars"] {
        let objects = render(dir);
        let driver = only(&objects, "CSIDriver", PROVISIONER);
        let spec = &driver["spec"];
        assert_eq!(spec["attachRequired"], false, "deploy/{dir}");
        assert_eq!(strings(&spec["volumeLifecycleModes"]), ["Persistent"]);
        // The volume's gid gives non-root pods write access; kubelet never
        // chowns a shared filesystem (README, "Non-root pods").
        assert_eq!(spec["fsGroupPolicy"], "None");

        let daemonset = only(&objects, "DaemonSet", "aplo-csi-node");
        assert_eq!(namespace(daemonset), NAMESPACE);
        let pod = &daemonset["spec"]["template"]["spec"];
        // The FUSE clients outlive the plugin: host PID namespace, mounts
        // in the host's mount namespace, clients in their own cgroup.
        assert_eq!(pod["hostPID"], true, "deploy/{dir}");
        let aplo = container(pod, "aplo");
        assert_csi_command(aplo, &format!("deploy/{dir}: the node plugin"));
        assert_eq!(strings(&aplo["args"])[..2], ["csi", "--role=node"]);
        assert_eq!(flag(aplo, "--mount-namespace"), Some("/proc/1/ns/mnt"));
        let cgroups = flag(aplo, "--client-cgroup-root").expect("--client-cgroup-root");
        assert_eq!(aplo["securityContext"]["privileged"], true);
        let hostpath = |volume: &str| -> String {
            pod["volumes"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|v| v["name"] == volume)
                .and_then(|v| v["hostPath"]["path"].as_str())
                .unwrap_or_else(|| panic!("volume {volume} is not a hostPath"))
                .to_owned()
        };
        assert_eq!(hostpath(volume_at(aplo, cgroups)), "/sys/fs/cgroup");
        // kubelet's paths are the host's, and mounts must reach the host.
        let kubelet = aplo["volumeMounts"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["mountPath"] == "/var/lib/kubelet")
            .expect("/var/lib/kubelet is mounted");
        assert_eq!(kubelet["mountPropagation"], "Bidirectional");
        assert_eq!(
            hostpath(kubelet["name"].as_str().unwrap()),
            "/var/lib/kubelet"
        );
        assert_eq!(flag(aplo, "--kubelet-dir"), Some("/var/lib/kubelet"));
        assert_eq!(hostpath(volume_at(aplo, "/dev")), "/dev");
        // The stage records and client logs outlive the pod; the records
        // are not next to the socket.
        for (flag_name, what) in [("--state-dir", "state"), ("--client-log-dir", "logs")] {
            let path = flag(aplo, flag_name).unwrap_or_else(|| panic!("{flag_name}"));
            let volume = volume_at(aplo, path);
            assert!(hostpath(volume).starts_with('/'), "{what} on a hostPath");
            assert_ne!(volume, "plugin-dir", "{what} next to the socket");
        }
        // The socket: aplo serves it and registers it with kubelet under
        // its host path; kubelet probes aplo's own health endpoint.
        let endpoint = flag(aplo, "--endpoint").expect("--endpoint");
        let socket = endpoint.strip_prefix("unix://").expect("a unix endpoint");
        let socket_volume = volume_at(aplo, socket);
        assert_eq!(
            hostpath(socket_volume),
            format!("/var/lib/kubelet/plugins/{PROVISIONER}")
        );
        let in_volume = socket
            .strip_prefix(mount_path(aplo, socket_volume).unwrap())
            .unwrap();
        assert_eq!(
            flag(aplo, "--kubelet-endpoint"),
            Some(format!("{}{in_volume}", hostpath(socket_volume)).as_str())
        );
        let registry = flag(aplo, "--registration-dir").expect("--registration-dir");
        assert_eq!(volume_at(aplo, registry), "registration-dir");
        assert_eq!(
            hostpath("registration-dir"),
            "/var/lib/kubelet/plugins_registry"
        );
        assert_eq!(
            pod["containers"].as_array().map(Vec::len),
            Some(1),
            "deploy/{dir}: no sidecars"
        );
        assert_eq!(
            aplo["livenessProbe"]["httpGet"]["port"], "healthz",
            "deploy/{dir}"
        );
        assert_eq!(flag(aplo, "--health-address"), Some("$(POD_IP):9808"));
    }
}

#[test]
fn the_csi_sidecars_overlay_runs_the_controller_role_behind_the_stock_sidecars() {
    let objects = render("overlays/csi-sidecars");
    let deployment = only(&objects, "Deployment", "aplo");
    assert_eq!(deployment["spec"]["replicas"], 1, "one writer of the store");
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    let pod = &deployment["spec"]["template"]["spec"];
    let aplo = container(pod, "aplo");
    assert_csi_command(aplo, "the controller");
    assert_eq!(strings(&aplo["args"])[..2], ["csi", "--role=controller"]);
    assert_eq!(flag(aplo, "--driver-name"), Some(PROVISIONER));
    let socket = flag(aplo, "--endpoint")
        .and_then(|e| e.strip_prefix("unix://"))
        .expect("a unix endpoint");
    let socket_volume = volume_at(aplo, socket);
    let provisioner = container(pod, "csi-provisioner");
    assert!(
        strings(&provisioner["args"]).contains(&"--extra-create-metadata"),
        "quota policies need the claim's name and namespace"
    );
    for name in ["csi-provisioner", "csi-resizer", "livenessprobe"] {
        let sidecar = container(pod, name);
        assert_pinned(sidecar);
        let address = flag(sidecar, "--csi-address").expect("--csi-address");
        assert_eq!(volume_at(sidecar, address), socket_volume, "{name}");
    }
    // `aplo serve` does not run: nothing may call it.
    assert_eq!(
        of_kind(&objects, "ValidatingWebhookConfiguration").count(),
        0
    );
    assert_eq!(of_kind(&objects, "Service").count(), 0);
    assert!(pod_references(pod).iter().all(|(_, n)| n != WEBHOOK_SECRET));
    assert_eq!(aplo["livenessProbe"]["httpGet"]["port"], "healthz");
    assert!(aplo.get("readinessProbe").is_none_or(Value::is_null));
    // The sidecars can do their work: PVs, claims, leases.
    let roles: Vec<&Value> = of_kind(&objects, "ClusterRole").collect();
    let all: BTreeSet<Grant> = roles.iter().flat_map(|r| grants(r)).collect();
    for (group, resource, verb) in [
        ("", "persistentvolumes", "create"),
        ("", "persistentvolumes", "delete"),
        ("", "persistentvolumeclaims", "update"),
        ("", "persistentvolumeclaims/status", "patch"),
        ("storage.k8s.io", "storageclasses", "get"),
        ("storage.k8s.io", "csinodes", "get"),
    ] {
        assert!(
            all.contains(&(group.to_owned(), resource.to_owned(), verb.to_owned())),
            "no ClusterRole grants {verb} {resource}"
        );
    }
    assert!(
        !roles.iter().any(|r| name(r) == "aplo-provisioner"),
        "the provisioner loop's RBAC is not needed"
    );
}
