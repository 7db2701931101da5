//! The registry: names, parameters, settings, the policy directory, hot
//! reload and the compile cache.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aplo::model::{Decision, GIB, Pairs, Verdict};
use aplo::policy::{PolicyError, Registry, RegistryConfig, ReloadEvent, Runtime, RuntimeConfig};
use common::{R3, bundled, runtime, six_nodes};

fn params(pairs: &[(&str, &str)]) -> Pairs {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn registry_with_dir(dir: &std::path::Path) -> Arc<Registry> {
    let config = RegistryConfig {
        dir: Some(dir.to_path_buf()),
        ..Default::default()
    };
    Arc::new(Registry::open(runtime(), config).expect("registry opens"))
}

fn request() -> aplo::model::PlacementRequest {
    aplo::model::testing::request(10 * GIB, R3)
}

#[test]
fn bundled_policies_are_always_available() {
    let registry = Registry::open(runtime(), RegistryConfig::default()).unwrap();
    let names: Vec<String> = registry.list().into_iter().map(|p| p.name).collect();
    assert_eq!(
        names,
        [
            "binpack",
            "classes",
            "namespace-quota",
            "requested",
            "zone-spread"
        ]
    );
    let set = registry.resolve(&Pairs::new()).unwrap();
    assert_eq!(set.placement.policy.name(), "zone-spread");
    assert_eq!(set.durability.policy.name(), "classes");
    assert!(set.quota.is_none());
    let zone_spread = registry.get("zone-spread").unwrap();
    assert_eq!(zone_spread.decisions(), vec![Decision::Placement]);
    assert!(
        zone_spread
            .info()
            .settings
            .iter()
            .any(|s| s.key == "strict")
    );
}

#[test]
fn parameters_choose_policies_and_pass_settings() {
    let registry = Registry::open(runtime(), RegistryConfig::default()).unwrap();
    let set = registry
        .resolve(&params(&[
            ("placement", "binpack"),
            ("durability", "classes"),
            ("classes.class", "arbiter"),
            ("quota", "namespace-quota"),
            ("namespace-quota.max-bytes", "1Ti"),
        ]))
        .unwrap();
    assert_eq!(set.placement.policy.name(), "binpack");
    let decision = set
        .durability(&aplo::model::testing::claim(GIB))
        .unwrap()
        .granted()
        .unwrap();
    assert_eq!(
        decision.scheme,
        aplo::model::Scheme::Replicate {
            count: 3,
            arbiter: true
        }
    );
    assert_eq!(
        set.quota
            .as_ref()
            .unwrap()
            .settings
            .get("max-bytes")
            .map(String::as_str),
        Some("1Ti")
    );
}

#[test]
fn configuration_mistakes_are_named() {
    let registry = Registry::open(runtime(), RegistryConfig::default()).unwrap();
    let err = |p: &[(&str, &str)]| {
        registry
            .resolve(&params(p))
            .err()
            .expect("refused")
            .to_string()
    };
    let unknown = err(&[("placement", "spread-thin")]);
    assert!(
        unknown.contains("'spread-thin'") && unknown.contains("zone-spread"),
        "{unknown}"
    );
    let wrong = err(&[("placement", "classes")]);
    assert!(
        wrong.contains("does not make placement decisions"),
        "{wrong}"
    );
    let settings = err(&[("zone-spread.strict", "perhaps")]);
    assert!(
        settings.contains("policy 'zone-spread' refused its settings")
            && settings.contains("'strict'"),
        "{settings}"
    );
    let stray = err(&[("binpack.strict", "true")]);
    assert!(
        stray.contains("'binpack.strict'") && stray.contains("does not use"),
        "{stray}"
    );
}

#[test]
fn directory_policies_load_and_shadow_bundled_ones() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("my-spread.wasm"), bundled("zone-spread")).unwrap();
    std::fs::write(dir.path().join("zone-spread.wasm"), bundled("binpack")).unwrap();
    std::fs::write(dir.path().join("Not_A_Name.wasm"), bundled("binpack")).unwrap();
    std::fs::write(dir.path().join("README.txt"), "ignored").unwrap();
    let registry = registry_with_dir(dir.path());
    let mine = registry.get("my-spread").unwrap();
    assert!(mine.origin().ends_with("my-spread.wasm"));
    assert_eq!(
        registry.get("zone-spread").unwrap().info().description,
        bundled_description("binpack")
    );
    assert!(registry.get("Not_A_Name").is_err());
    // Removing the shadowing file brings the bundled policy back.
    std::fs::remove_file(dir.path().join("zone-spread.wasm")).unwrap();
    let events = registry.rescan();
    assert!(
        events.contains(&ReloadEvent::Removed {
            name: "zone-spread".into()
        }),
        "{events:?}"
    );
    assert_eq!(registry.get("zone-spread").unwrap().origin(), "bundled");
}

fn bundled_description(name: &str) -> String {
    let registry = Registry::open(runtime(), RegistryConfig::default()).unwrap();
    registry.get(name).unwrap().info().description.clone()
}

/// Replace a file the way ConfigMap updates and careful admins do: write
/// aside, then rename over.
fn replace(path: &std::path::Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn wait_for_generation(registry: &Registry, past: u64) {
    let started = Instant::now();
    while registry.generation() <= past {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the watcher did not reload within 30 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn hot_reload_uses_the_new_version_and_keeps_the_old_on_failure() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("custom.wasm");
    std::fs::write(&path, bundled("zone-spread")).unwrap();
    let registry = registry_with_dir(dir.path());
    let _watcher = registry.watch(Duration::from_millis(50));
    let parameters = params(&[("placement", "custom")]);
    let before = registry.resolve(&parameters).unwrap();
    let zone_spread_layout = before
        .place(&request(), &six_nodes())
        .unwrap()
        .granted()
        .unwrap();

    // A new version: binpack under the same name. The next decision uses it.
    let generation = registry.generation();
    replace(&path, bundled("binpack"));
    wait_for_generation(&registry, generation);
    let after = registry.resolve(&parameters).unwrap();
    assert_eq!(
        after.placement.policy.info().description,
        bundled_description("binpack")
    );
    let binpack_layout = after
        .place(&request(), &six_nodes())
        .unwrap()
        .granted()
        .unwrap();
    assert_ne!(
        binpack_layout.layout, zone_spread_layout.layout,
        "binpack and zone-spread choose differently here"
    );

    // A broken replacement: rejected, the working version stays active.
    let sha = registry.get("custom").unwrap().sha256();
    replace(&path, b"\0asm\x0d\0\x01\0 broken");
    let events = registry.rescan();
    assert!(
        matches!(&events[..], [ReloadEvent::Rejected { name, error }] if name == "custom" && error.contains("custom.wasm")),
        "{events:?}"
    );
    assert_eq!(registry.get("custom").unwrap().sha256(), sha);
    assert!(matches!(
        registry
            .resolve(&parameters)
            .unwrap()
            .place(&request(), &six_nodes()),
        Ok(Verdict::Granted(_))
    ));
    // The broken file is not recompiled on every scan.
    assert!(registry.rescan().is_empty());
}

#[test]
fn a_broken_file_at_start_up_is_skipped_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.wasm"), b"nope").unwrap();
    let registry = registry_with_dir(dir.path());
    assert!(matches!(
        registry.get("broken"),
        Err(PolicyError::Unknown { .. })
    ));
    assert!(registry.get("zone-spread").is_ok());
}

#[test]
fn the_compile_cache_is_used_and_survives_damage() {
    let cache = tempfile::tempdir().unwrap();
    let runtime = Arc::new(
        Runtime::new(RuntimeConfig {
            cache_dir: Some(cache.path().to_path_buf()),
            ..Default::default()
        })
        .unwrap(),
    );
    let first = common::load_bundled(&runtime, "zone-spread");
    let artifacts: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .collect();
    assert_eq!(artifacts.len(), 1, "one artifact per module");
    let name = artifacts[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        name.starts_with(&first.sha256()),
        "{name} is keyed by the module's sha256"
    );
    // Loaded again from the cache: same behaviour.
    let cached = common::load_bundled(&runtime, "zone-spread");
    assert_eq!(cached.info(), first.info());
    // A damaged artifact is detected and replaced, not run.
    let mut bytes = std::fs::read(&artifacts[0]).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&artifacts[0], &bytes).unwrap();
    let recovered = common::load_bundled(&runtime, "zone-spread");
    assert_eq!(recovered.info(), first.info());
    assert_ne!(
        std::fs::read(&artifacts[0]).unwrap(),
        bytes,
        "the damaged artifact was rewritten"
    );
}

#[test]
fn a_cache_directory_others_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let cache = tempfile::tempdir().unwrap();
    std::fs::set_permissions(cache.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = Runtime::new(RuntimeConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        ..Default::default()
    })
    .err()
    .unwrap();
    assert!(
        err.to_string()
            .contains("must not be writable by group or others"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_decisions_run_off_the_reactor() {
    let registry = Registry::open(runtime(), RegistryConfig::default()).unwrap();
    let set = registry.resolve(&Pairs::new()).unwrap();
    let topology = Arc::new(aplo::policy::PreparedTopology::new(Arc::new(six_nodes())));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let set = set.clone();
            let topology = topology.clone();
            tokio::spawn(async move { set.place_async(request(), topology).await })
        })
        .collect();
    for task in tasks {
        assert!(matches!(task.await.unwrap(), Ok(Verdict::Granted(_))));
    }
}
