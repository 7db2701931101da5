//! Shared helpers for the host's integration tests.

#![allow(dead_code)]

use std::sync::Arc;

use aplo::model::testing::topology;
use aplo::model::{GIB, Scheme, Topology};
use aplo::policy::{Limits, LoadedPolicy, Runtime, RuntimeConfig, bundled};

/// A runtime with default settings (no cache).
pub fn runtime() -> Arc<Runtime> {
    Arc::new(Runtime::new(RuntimeConfig::default()).expect("runtime"))
}

/// The bytes of a bundled policy.
pub fn bundled(name: &str) -> &'static [u8] {
    bundled::BUNDLED
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no bundled policy {name}"))
        .1
}

/// Load a bundled policy under its own name with default limits.
pub fn load_bundled(runtime: &Arc<Runtime>, name: &str) -> Arc<LoadedPolicy> {
    Arc::new(
        runtime
            .load(name, "bundled", bundled(name), Limits::default())
            .expect("bundled policies load"),
    )
}

/// The hostile test policy (built by host/build.rs from policies/testing/hostile).
pub fn hostile_wasm() -> Vec<u8> {
    std::fs::read(env!("APLO_HOSTILE_WASM")).expect("the hostile policy was built by build.rs")
}

/// Load the hostile policy with `limits`.
pub fn hostile(runtime: &Arc<Runtime>, limits: Limits) -> Arc<LoadedPolicy> {
    Arc::new(
        runtime
            .load("hostile", "test", &hostile_wasm(), limits)
            .expect("hostile loads"),
    )
}

/// A set making every decision with `policy` and `settings`.
pub fn policy_set(
    policy: &Arc<LoadedPolicy>,
    settings: aplo::model::Pairs,
) -> aplo::policy::PolicySet {
    let bound = aplo::policy::Bound {
        policy: policy.clone(),
        settings,
    };
    aplo::policy::PolicySet {
        durability: bound.clone(),
        placement: bound.clone(),
        quota: Some(bound),
        host: aplo::model::Pairs::new(),
    }
}

/// Six nodes in three zones, two devices of 100 GiB free on each; the last
/// node's second device has failed, for lies about offline devices.
pub fn six_nodes() -> Topology {
    let mut t = topology()
        .zones(3)
        .nodes_per_zone(2)
        .devices_per_node(2)
        .free(100 * GIB)
        .build();
    t.clusters[0].nodes[5].devices[1].state = aplo::model::State::Failed;
    t
}

/// Replica 3.
pub const R3: Scheme = Scheme::Replicate {
    count: 3,
    arbiter: false,
};

/// A component built from a core module in WAT that exports `settings` and
/// `durability`. `describe` and `validate` answer correctly; `decide` runs
/// `decide_body`, which must leave an i32 (a pointer to the result) on the
/// stack. Memory: 1 page; bytes 128.. are free for the body's use.
pub fn wat_durability(decide_body: &str) -> Vec<u8> {
    wat_durability_with("", decide_body)
}

/// [`wat_durability`] with extra module fields (tables, memories, ...).
pub fn wat_durability_with(fields: &str, decide_body: &str) -> Vec<u8> {
    wat_durability_full(fields, DESCRIBE_WAT, DECIDE_TYPE, decide_body, |wit| {
        wit.to_owned()
    })
}

/// The core signature of the contract's `decide`.
const DECIDE_TYPE: &str =
    "(param i32 i32 i32 i32 i32 i32 i32 i32 i64 i32 i32 i32 i32) (result i32)";

/// A durability component whose `decide` has the core signature
/// `decide_type`, built against the contract's WIT as `patch_wit` rewrites
/// it: for modules that export the right names with the wrong types.
pub fn wat_component(
    fields: &str,
    decide_type: &str,
    decide_body: &str,
    patch_wit: impl FnOnce(&str) -> String,
) -> Vec<u8> {
    wat_durability_full(fields, DESCRIBE_WAT, decide_type, decide_body, patch_wit)
}

/// `info { description: "wat", version: "0.0.0", settings: [] }` at 16.
const DESCRIBE_WAT: &str = r#"
  (data (i32.const 16) "\40\00\00\00\03\00\00\00\48\00\00\00\05\00\00\00\00\00\00\00\00\00\00\00")
  (data (i32.const 64) "wat")
  (data (i32.const 72) "0.0.0")"#;

/// `text` as a WAT string literal's contents: every byte escaped.
pub fn wat_bytes(text: &[u8]) -> String {
    text.iter().map(|b| format!("\\{b:02x}")).collect()
}

/// A durability policy (as [`wat_durability`]) whose `describe()` says
/// `description` and `version` and documents one setting, `(key,
/// description, default)`: for hostile text. The strings live at 512..4096.
pub fn wat_durability_describing(
    description: &str,
    version: &str,
    setting: (&str, &str, &str),
    decide_body: &str,
) -> Vec<u8> {
    wat_durability_with_info("", description, version, setting, decide_body)
}

/// [`wat_durability_describing`] with extra module fields.
pub fn wat_durability_with_info(
    fields: &str,
    description: &str,
    version: &str,
    setting: (&str, &str, &str),
    decide_body: &str,
) -> Vec<u8> {
    let mut data = String::new();
    let mut next = 512u32;
    let mut place = |text: &str| -> [u32; 2] {
        let at = next;
        next += text.len() as u32;
        assert!(next <= 4096, "the describe text must fit below 4096");
        data.push_str(&format!(
            "\n  (data (i32.const {at}) \"{}\")",
            wat_bytes(text.as_bytes())
        ));
        [at, text.len() as u32]
    };
    let words = |words: &[u32]| -> Vec<u8> { words.iter().flat_map(|w| w.to_le_bytes()).collect() };
    let [d, dl] = place(description);
    let [v, vl] = place(version);
    let [k, kl] = place(setting.0);
    let [sd, sdl] = place(setting.1);
    let [df, dfl] = place(setting.2);
    // info at 16: description, version, settings (one setting-doc at 256).
    let info = words(&[d, dl, v, vl, 256, 1]);
    // setting-doc: key, description, default: option<string> (tag, pad, ptr, len).
    let doc = words(&[k, kl, sd, sdl, 1, df, dfl]);
    let describe = format!(
        "{data}\n  (data (i32.const 16) \"{}\")\n  (data (i32.const 256) \"{}\")",
        wat_bytes(&info),
        wat_bytes(&doc)
    );
    wat_durability_full(fields, &describe, DECIDE_TYPE, decide_body, |wit| {
        wit.to_owned()
    })
}

/// The module behind the `wat_durability*` helpers: `describe` answers the
/// info record at 16 that `describe_fields` lays out, `decide` has the core
/// signature `decide_type`, and the WIT is the contract's as `patch_wit`
/// rewrites it.
fn wat_durability_full(
    fields: &str,
    describe_fields: &str,
    decide_type: &str,
    decide_body: &str,
    patch_wit: impl FnOnce(&str) -> String,
) -> Vec<u8> {
    let wat = format!(
        r#"(module
  (memory (export "memory") 1)
  {fields}
  (global $heap (mut i32) (i32.const 4096))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
                           (i32.xor (i32.sub (local.get 2) (i32.const 1)) (i32.const -1))))
    (global.set $heap (i32.add (local.get $p) (local.get 3)))
    (local.get $p))
  {describe_fields}
  ;; result<_, string>::ok at 96
  (data (i32.const 96) "\00\00\00\00\00\00\00\00\00\00\00\00")
  (func (export "aplo:policy/settings@0.1.0#describe") (result i32) (i32.const 16))
  (func (export "aplo:policy/settings@0.1.0#validate") (param i32 i32) (result i32) (i32.const 96))
  (func (export "aplo:policy/durability@0.1.0#decide") {decide_type}
    {decide_body}))"#
    );
    let mut module = wat::parse_str(&wat).expect("valid WAT");
    let mut resolve = wit_parser::Resolve::default();
    let wit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../wit/0.1.0/policy.wit"
    ))
    .expect("the contract's WIT");
    let package = resolve
        .push_str("policy.wit", &patch_wit(&wit))
        .expect("WIT parses");
    let world = resolve
        .select_world(&[package], Some("durability-policy"))
        .expect("world exists");
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
        false,
    )
    .expect("embed metadata");
    wit_component::ComponentEncoder::default()
        .module(&module)
        .expect("module accepted")
        .validate(true)
        .encode()
        .expect("component encodes")
}

/// A registry with the bundled policies and default limits, compiled once
/// per test binary.
pub fn registry() -> Arc<aplo::policy::Registry> {
    static REGISTRY: std::sync::OnceLock<Arc<aplo::policy::Registry>> = std::sync::OnceLock::new();
    REGISTRY
        .get_or_init(|| {
            Arc::new(
                aplo::policy::Registry::open(runtime(), aplo::policy::RegistryConfig::default())
                    .expect("the registry opens"),
            )
        })
        .clone()
}

/// A real sshd on 127.0.0.1, with its own host key, client key and
/// config in a temporary directory; killed when dropped. Installs
/// openssh-server from Debian if this machine lacks it (as `.ci/run` does).
pub struct Sshd {
    child: std::process::Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Sshd {
    const SSHD: &'static str = "/usr/sbin/sshd";

    /// Start one and wait until it accepts connections.
    pub fn start() -> Sshd {
        Self::start_with("")
    }

    /// [`Sshd::start`] with `extra` lines of `sshd_config`, e.g. a
    /// `ForceCommand` that runs every command in a test's namespaces.
    pub fn start_with(extra: &str) -> Sshd {
        use std::process::{Command, Stdio};
        if !std::path::Path::new(Self::SSHD).exists() {
            let installed = Command::new("apt-get")
                .args(["install", "-y", "-qq", "openssh-server"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status();
            assert!(
                matches!(installed, Ok(s) if s.success()),
                "sshd is missing and `apt-get install -y openssh-server` failed: {installed:?}"
            );
        }
        // sshd refuses to start without its privilege separation directory.
        std::fs::create_dir_all("/run/sshd").expect("create /run/sshd (needs root)");
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        for (key, comment) in [("host_key", "host"), ("client_key", "client")] {
            let made = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
                .arg(path(key))
                .status()
                .expect("ssh-keygen runs");
            assert!(made.success(), "ssh-keygen failed for {key}");
        }
        std::fs::copy(path("client_key.pub"), path("authorized_keys")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::fs::write(
            path("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\n\
                 PermitRootLogin prohibit-password\nPasswordAuthentication no\n\
                 StrictModes no\nUsePAM no\nPidFile {}\n{extra}",
                path("host_key").display(),
                path("authorized_keys").display(),
                path("sshd.pid").display()
            ),
        )
        .unwrap();
        let child = Command::new(Self::SSHD)
            .args(["-D", "-e", "-f"])
            .arg(path("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sshd starts");
        let sshd = Sshd { child, dir, port };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return sshd;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("sshd did not listen on 127.0.0.1:{port} within 5 s");
    }

    /// The transport that reaches this machine through it, as root.
    pub fn transport(&self) -> aplo::exec::command::Transport {
        aplo::exec::command::Transport::Ssh {
            destination: "root@127.0.0.1".into(),
            options: vec![
                "-p".into(),
                self.port.to_string(),
                "-i".into(),
                self.dir.path().join("client_key").display().to_string(),
                "-o".into(),
                "StrictHostKeyChecking=no".into(),
                "-o".into(),
                "UserKnownHostsFile=/dev/null".into(),
                "-o".into(),
                "LogLevel=ERROR".into(),
            ],
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
