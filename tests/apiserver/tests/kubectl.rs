//! The real `kubectl` against the server's kubeconfig. kubectl must be
//! installed at /usr/bin/kubectl: a missing kubectl fails the test.

mod common;

use std::path::Path;

use common::{client, server};
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Resource;
use kube::api::{Api, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use serde_json::json;

const KUBECTL: &str = "/usr/bin/kubectl";

struct Kubectl {
    dir: tempfile::TempDir,
}

impl Kubectl {
    fn new(kubeconfig: &str) -> Kubectl {
        assert!(
            Path::new(KUBECTL).exists(),
            "{KUBECTL} is missing: install kubectl (apt-get install -y kubectl) to run this test"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("kubeconfig"), kubeconfig).unwrap();
        Kubectl { dir }
    }

    /// Run kubectl; panics with its stderr if it fails.
    async fn run(&self, args: &[&str]) -> String {
        let out = tokio::process::Command::new(KUBECTL)
            .arg("--kubeconfig")
            .arg(self.dir.path().join("kubeconfig"))
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .args(args)
            .env("HOME", self.dir.path())
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}\n{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_gets_applies_and_describes() {
    let server = server().await;
    let c = client(&server);
    let kubectl = Kubectl::new(&server.kubeconfig());

    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(c.clone(), "aplo-system");
    let claim: PersistentVolumeClaim = serde_json::from_value(
        json!({"metadata": {"name": "data"}, "spec": {"storageClassName": "fast"}}),
    )
    .unwrap();
    let claim = pvcs.create(&PostParams::default(), &claim).await.unwrap();

    let out = kubectl.run(&["get", "pvc", "-A"]).await;
    assert!(out.contains("aplo-system") && out.contains("data"), "{out}");

    let sc = kubectl.write(
        "sc.yaml",
        "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: fast\nprovisioner: aplo.example/gluster\nparameters:\n  replicas: \"3\"\n",
    );
    let out = kubectl
        .run(&["apply", "--server-side", "--validate=false", "-f", &sc])
        .await;
    assert!(
        out.contains("storageclass.storage.k8s.io/fast serverside-applied"),
        "{out}"
    );
    let scs: Api<StorageClass> = Api::all(c.clone());
    let fast = scs.get("fast").await.unwrap();
    assert_eq!(fast.provisioner, "aplo.example/gluster");
    assert_eq!(
        fast.metadata.managed_fields.unwrap()[0].manager.as_deref(),
        Some("kubectl")
    );

    let recorder = Recorder::new(
        c.clone(),
        Reporter {
            controller: "aplo".into(),
            instance: None,
        },
    );
    let ev = Event {
        type_: EventType::Warning,
        reason: "ProvisioningFailed".into(),
        note: Some("no brick has room for 1Gi".into()),
        action: "Provision".into(),
        secondary: None,
    };
    recorder.publish(&ev, &claim.object_ref(&())).await.unwrap();
    let out = kubectl
        .run(&["describe", "pvc", "data", "-n", "aplo-system"])
        .await;
    assert!(out.contains("ProvisioningFailed"), "{out}");
    assert!(out.contains("no brick has room for 1Gi"), "{out}");
    assert!(out.contains("Warning"), "{out}");
}
