//! The registry: names, parameters, settings, the policy directory, hot
//! reload and the compile cache.

mod common;

use std::path::PathBuf;
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

/// How long a test waits for the watcher before it fails.
const WATCHER_WAIT: Duration = Duration::from_secs(30);

/// Wait until the set of active policies changed after `past`.
fn wait_for_generation(registry: &Registry, past: u64) {
    registry
        .wait_for(WATCHER_WAIT, |p| p.generation > past)
        .unwrap_or_else(|last| panic!("the watcher did not reload within 30 s: {last:?}"));
}

/// Wait until the watcher finished a scan of the directory begun after
/// this call: one that has seen every change made before it.
fn wait_for_a_scan_from_now(registry: &Registry) {
    let begun = registry.progress().scans_begun;
    registry
        .wait_for(WATCHER_WAIT, |p| p.scans_done > begun)
        .unwrap_or_else(|last| panic!("the watcher did not scan within 30 s: {last:?}"));
}

#[test]
fn hot_reload_uses_the_new_version_and_keeps_the_old_on_failure() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("custom.wasm");
    std::fs::write(&path, bundled("zone-spread")).unwrap();
    let registry = registry_with_dir(dir.path());
    let watcher = registry.watch(Duration::from_millis(50));
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

    // A broken replacement seen by the watcher: once it has scanned the
    // directory since, nothing changed.
    let (generation, sha) = (
        registry.generation(),
        registry.get("custom").unwrap().sha256(),
    );
    replace(&path, b"\0asm\x0d\0\x01\0 broken, seen by the watcher");
    wait_for_a_scan_from_now(&registry);
    assert_eq!(registry.generation(), generation);
    assert_eq!(registry.get("custom").unwrap().sha256(), sha);

    // The watcher stops, so that the scans below are the test's own and
    // their events are the whole story.
    drop(watcher);

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
    .unwrap()
    .to_string();
    let path = cache.path().display().to_string();
    assert!(
        err.starts_with(&path)
            && err.contains("with mode 0777")
            && err.contains("writable by no one else")
            && err.contains(&format!("`chmod go-w '{path}'`")),
        "{err}"
    );
}

/// A runtime caching compiled policies in `dir`.
fn cached_runtime(dir: &std::path::Path) -> Result<Arc<Runtime>, PolicyError> {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(dir.to_path_buf()),
        ..Default::default()
    })
    .map(Arc::new)
}

#[test]
fn a_cache_directory_owned_by_another_user_is_refused() {
    // Not world- or group-writable (0755): only its owner is wrong.
    use std::os::unix::fs::PermissionsExt;
    let cache = tempfile::tempdir().unwrap();
    std::fs::set_permissions(cache.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(cache.path(), Some(65534), None)
        .expect("chown needs root, which the test suite runs as");
    let err = cached_runtime(cache.path()).err().unwrap().to_string();
    let path = cache.path().display().to_string();
    assert!(
        err.starts_with(&path)
            && err.contains("owned by uid 65534 with mode 0755")
            && err.contains("owned by aplo's user (uid 0) or root")
            && err.contains(&format!("`chown 0 '{path}'`"))
            && !err.contains("chmod"),
        "{err}"
    );
    // Given back to aplo's user, the same directory works.
    std::os::unix::fs::chown(cache.path(), Some(0), None).unwrap();
    let runtime = cached_runtime(cache.path()).unwrap();
    common::load_bundled(&runtime, "zone-spread");
}

/// The artifact and digest files of `policy` in a cache directory.
fn artifact_of(cache: &std::path::Path, policy: &aplo::policy::LoadedPolicy) -> [PathBuf; 2] {
    let artifact = std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(&policy.sha256()) && name.ends_with(".cwasm")
        })
        .expect("the policy was cached");
    let digest = artifact.with_extension("cwasm.sha256");
    [artifact, digest]
}

#[test]
fn an_artifact_another_user_could_write_is_compiled_again_not_run() {
    use std::os::unix::fs::PermissionsExt;
    let cache = tempfile::tempdir().unwrap();
    let runtime = cached_runtime(cache.path()).unwrap();
    let zone_spread = common::load_bundled(&runtime, "zone-spread");
    let binpack = common::load_bundled(&runtime, "binpack");
    let [artifact, digest] = artifact_of(cache.path(), &zone_spread);
    let [foreign, foreign_digest] = artifact_of(cache.path(), &binpack);
    let description = |p: &aplo::policy::LoadedPolicy| p.info().description.clone();
    // What another user who can write the cache would do: put other code
    // (here: binpack's) and its digest under zone-spread's name.
    let swap = |mode: u32, digest_mode: u32, owner: u32| {
        std::fs::copy(&foreign, &artifact).unwrap();
        std::fs::copy(&foreign_digest, &digest).unwrap();
        std::fs::set_permissions(&artifact, std::fs::Permissions::from_mode(mode)).unwrap();
        std::fs::set_permissions(&digest, std::fs::Permissions::from_mode(digest_mode)).unwrap();
        std::os::unix::fs::chown(&artifact, Some(owner), None).unwrap();
    };
    // The check is what stops it: with trusted files, the swapped code runs.
    swap(0o644, 0o644, 0);
    let swapped = common::load_bundled(&runtime, "zone-spread");
    assert_eq!(description(&swapped), description(&binpack));
    for (mode, digest_mode, owner, case) in [
        (0o664, 0o644, 0, "a group-writable artifact"),
        (0o646, 0o644, 0, "a world-writable artifact"),
        (0o644, 0o664, 0, "a group-writable digest"),
        (0o644, 0o644, 65534, "an artifact owned by another user"),
    ] {
        swap(mode, digest_mode, owner);
        let loaded = common::load_bundled(&runtime, "zone-spread");
        assert_eq!(
            description(&loaded),
            description(&zone_spread),
            "{case} was loaded"
        );
        // Compiled again, and the artifact replaced by aplo's own.
        let meta = std::fs::metadata(&artifact).unwrap();
        assert_eq!(
            (
                std::os::unix::fs::MetadataExt::uid(&meta),
                meta.permissions().mode() & 0o777
            ),
            (0, 0o644),
            "{case}"
        );
        assert_ne!(
            std::fs::read(&artifact).unwrap(),
            std::fs::read(&foreign).unwrap()
        );
    }
}

/// Run `f` on another thread; fail, rather than hang, if it takes longer
/// than `limit`.
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || send.send(f()));
    receive
        .recv_timeout(limit)
        .unwrap_or_else(|_| panic!("did not finish within {limit:?}"))
}

fn mkfifo(path: &std::path::Path) {
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
}

#[test]
fn a_fifo_in_the_policy_directory_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    // At start-up: skipped, and the registry opens.
    mkfifo(&dir.path().join("early.wasm"));
    let path = dir.path().to_path_buf();
    let registry = within(Duration::from_secs(30), move || registry_with_dir(&path));
    assert!(matches!(
        registry.get("early"),
        Err(PolicyError::Unknown { .. })
    ));
    // On a rescan: refused with a clear error, promptly.
    mkfifo(&dir.path().join("x.wasm"));
    std::fs::write(dir.path().join("good.wasm"), bundled("binpack")).unwrap();
    let started = Instant::now();
    let events = within(Duration::from_secs(30), {
        let registry = registry.clone();
        move || registry.rescan()
    });
    assert!(started.elapsed() < Duration::from_secs(10));
    let refused: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            ReloadEvent::Rejected { name, error } => Some((name.as_str(), error.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(
        refused,
        [(
            "x",
            "x.wasm: not a regular file but a FIFO; only regular files (or symlinks to them) are read as policies"
        )],
        "{events:?}"
    );
    // The registry stays usable, loads the good file beside it, and does
    // not look at the FIFO again until it changes.
    assert!(registry.get("good").is_ok());
    assert!(registry.resolve(&params(&[("placement", "good")])).is_ok());
    assert!(registry.rescan().is_empty());
}

/// A sparse file of 1 GiB that starts like a WebAssembly module.
fn huge_module(path: &std::path::Path) {
    let file = std::fs::File::create(path).unwrap();
    std::io::Write::write_all(&mut &file, b"\0asm\x0d\0\x01\0").unwrap();
    file.set_len(1 << 30).unwrap();
}

#[test]
fn a_huge_file_is_refused_without_being_read() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry_with_dir(dir.path());
    huge_module(&dir.path().join("huge.wasm"));
    let started = Instant::now();
    let events = registry.rescan();
    let took = started.elapsed();
    assert!(
        matches!(&events[..], [ReloadEvent::Rejected { name, error }]
            if name == "huge"
            && error == "huge.wasm: 1GiB (1073741824 bytes) is over the 64MiB cap on a policy module; it was not read"),
        "{events:?}"
    );
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert!(
        registry.rescan().is_empty(),
        "refused once, until it changes"
    );

    // The memory it took, measured alone in a child process: the peak
    // resident size grows by far less than the file.
    let scratch = tempfile::tempdir().unwrap();
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "huge_file_peak_memory",
            "--ignored",
            "--nocapture",
        ])
        .env("APLO_TEST_HUGE_DIR", scratch.path())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&child.stdout);
    assert!(
        child.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&child.stderr)
    );
    let grew: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("peak grew by KiB: "))
        .unwrap_or_else(|| panic!("no measurement: {out}"))
        .trim()
        .parse()
        .unwrap();
    eprintln!("reading the policy directory with a 1 GiB file grew the peak by {grew} KiB");
    assert!(grew < 32 << 10, "the peak grew by {grew} KiB");
}

/// `a_huge_file_is_refused_without_being_read`'s measurement, run alone in
/// a process of its own.
#[test]
#[ignore = "run by a_huge_file_is_refused_without_being_read, in a child process"]
fn huge_file_peak_memory() {
    let Some(dir) = std::env::var_os("APLO_TEST_HUGE_DIR") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let registry = registry_with_dir(&dir);
    huge_module(&dir.join("huge.wasm"));
    let status = |field: &str| -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    };
    // Reset the peak to what is resident now (Linux 4.0+).
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak resident size");
    let before = status("VmHWM:");
    let events = registry.rescan();
    assert!(
        matches!(&events[..], [ReloadEvent::Rejected { .. }]),
        "{events:?}"
    );
    println!(
        "peak grew by KiB: {}",
        status("VmHWM:").saturating_sub(before)
    );
}

#[test]
fn a_file_without_the_magic_number_is_refused_before_compiling() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry_with_dir(dir.path());
    std::fs::write(dir.path().join("text.wasm"), "(module) but not binary").unwrap();
    let events = registry.rescan();
    assert_eq!(
        events,
        [ReloadEvent::Rejected {
            name: "text".into(),
            error: "text.wasm: not a WebAssembly file (bad magic number)".into()
        }]
    );
}

#[test]
fn symlinks_to_policies_load_as_before() {
    // As a ConfigMap volume lays files out: name -> ..data/name,
    // ..data -> ..<timestamp>/.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("..2026_01_01_00_00_00.000000000");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("linked.wasm"), bundled("binpack")).unwrap();
    std::os::unix::fs::symlink("..2026_01_01_00_00_00.000000000", dir.path().join("..data"))
        .unwrap();
    std::os::unix::fs::symlink("..data/linked.wasm", dir.path().join("linked.wasm")).unwrap();
    std::os::unix::fs::symlink("linked.wasm", dir.path().join("alias.wasm")).unwrap();
    let registry = registry_with_dir(dir.path());
    for name in ["linked", "alias"] {
        assert_eq!(
            registry.get(name).unwrap().info().description,
            bundled_description("binpack"),
            "{name}"
        );
    }
    assert!(
        registry.rescan().is_empty(),
        "unchanged links are not reread"
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
