//! A policy that misbehaves on demand, for the sandbox's tests. It makes all
//! three decisions; the setting `mode` picks the misbehaviour. Never bundled.

use std::time::Duration;

use aplo_policy_sdk::prelude::*;

/// The hostile policy.
pub struct Hostile;

const MODES: [&str; 28] = [
    "ok",
    "panic",
    "loop",
    "bomb",
    "sleep-5s",
    "sleep-forever",
    "sleep-max-instant",
    "poll-2000",
    "random-flood",
    "random-60mib",
    "print-flood",
    "lie-unknown-device",
    "lie-offline-device",
    "lie-no-space",
    "lie-same-node",
    "lie-same-zone",
    "lie-shape",
    "lie-sizes",
    "lie-too-small",
    "lie-empty",
    "lie-clusters",
    "lie-arbiter-role",
    "lie-scheme",
    "lie-options",
    "lie-reserve",
    "lie-limit",
    "lie-limit-huge",
    "refuse",
];

/// What `describe()` does. It has no input, so the tests choose by
/// rewriting these bytes in the built module (same length, in the data
/// segment): `hostile-describe:<mode>` padded with NULs.
#[used]
static DESCRIBE_MODE: [u8; 40] = *b"hostile-describe:ok\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

fn describe_mode() -> String {
    // Through `black_box`, so the compiler cannot fold the bytes in.
    let bytes: &[u8; 40] = std::hint::black_box(&DESCRIBE_MODE);
    let text = bytes.split(|b| *b == 0).next().unwrap_or_default();
    String::from_utf8_lossy(text)
        .trim_start_matches("hostile-describe:")
        .to_owned()
}

fn mode(settings: &Settings) -> &str {
    settings.get("mode").unwrap_or("ok")
}

/// Misbehaviours shared by every decision.
fn common(mode: &str) {
    match mode {
        "panic" => panic!("hostile policy panicked on purpose"),
        "loop" => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        "bomb" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        "sleep-5s" => {
            // Where the deadline allows it, the wait is virtual: it returns
            // at once, and the clock shows it.
            let started = std::time::Instant::now();
            std::thread::sleep(Duration::from_secs(5));
            assert!(
                started.elapsed() >= Duration::from_secs(5),
                "the clock did not move across the sleep"
            );
        }
        "sleep-forever" => loop {
            std::thread::sleep(Duration::from_millis(1));
        },
        "sleep-max-instant" => {
            wasi::clocks::monotonic_clock::subscribe_instant(u64::MAX).block();
        }
        "poll-2000" => loop {
            let clocks: Vec<_> = (0..2000)
                .map(|i| wasi::clocks::monotonic_clock::subscribe_duration(1_000_000 + i))
                .collect();
            let all: Vec<&wasi::io::poll::Pollable> = clocks.iter().collect();
            std::hint::black_box(wasi::io::poll::poll(&all));
        },
        "random-flood" => loop {
            std::hint::black_box(wasi::random::random::get_random_bytes(8 << 20));
        },
        "random-60mib" => {
            std::hint::black_box(wasi::random::random::get_random_bytes(60 << 20));
        }
        "print-flood" => {
            let line = "x".repeat(1023);
            loop {
                println!("{line}");
            }
        }
        _ => {}
    }
}

impl Policy for Hostile {
    fn describe() -> Info {
        common(&describe_mode());
        Info::new(
            "Misbehaves on demand (tests only)",
            env!("CARGO_PKG_VERSION"),
        )
        .setting("mode", "What to do wrong.", Some("ok"))
        .setting(
            "validate",
            "What to do wrong when the settings are checked.",
            Some("ok"),
        )
    }

    fn validate(settings: &Settings) -> Result<(), String> {
        settings.only(&["mode", "validate"])?;
        // `validate=<mode>` misbehaves here, at the settings check.
        common(settings.get("validate").unwrap_or("ok"));
        settings.choice("mode", &MODES, "ok").map(|_| ())
    }
}

impl Placement for Hostile {
    fn place(
        request: &PlacementRequest,
        topology: &Topology,
        settings: &Settings,
    ) -> Result<Layout, String> {
        let mode = mode(settings);
        common(mode);
        if mode == "refuse" {
            return Err("hostile policy refuses politely".into());
        }
        // An honest single-set layout on the first device of each node.
        let cluster = topology.clusters.first().ok_or("no cluster")?;
        let size = request.scheme.set_size();
        let per_brick = request.bytes.div_ceil(request.scheme.data_multiplier());
        let mut bricks: Vec<Brick> = cluster
            .nodes
            .iter()
            .filter(|n| n.state == State::Online)
            .filter_map(|n| n.devices.iter().find(|d| d.state == State::Online))
            .take(size)
            .map(|d| Brick {
                device: d.id,
                bytes: per_brick,
                role: BrickRole::Data,
            })
            .collect();
        if request.scheme.has_arbiter()
            && let Some(last) = bricks.last_mut()
        {
            last.role = BrickRole::Arbiter;
        }
        let mut layout = Layout {
            sets: vec![BrickSet { bricks }],
            strict_zones: false,
        };
        let all_devices = || {
            topology
                .clusters
                .iter()
                .flat_map(|c| &c.nodes)
                .flat_map(|n| &n.devices)
        };
        let bricks = &mut layout.sets[0].bricks;
        match mode {
            "lie-unknown-device" => bricks[0].device = Id(0),
            "lie-offline-device" => {
                if let Some(d) = all_devices().find(|d| d.state != State::Online) {
                    bricks[0].device = d.id;
                }
            }
            "lie-no-space" => {
                for b in bricks.iter_mut() {
                    b.bytes = u64::MAX / 4;
                }
            }
            "lie-same-node" => {
                let first = &cluster.nodes[0];
                if first.devices.len() > 1 {
                    bricks[1].device = first.devices[1].id;
                }
            }
            "lie-same-zone" => layout.strict_zones = true,
            "lie-shape" => {
                bricks.pop();
            }
            "lie-sizes" => bricks[0].bytes += 4096,
            "lie-too-small" => {
                for b in bricks.iter_mut() {
                    b.bytes /= 2;
                }
            }
            "lie-empty" => layout.sets.clear(),
            "lie-clusters" => {
                if let Some(other) = topology
                    .clusters
                    .get(1)
                    .and_then(|c| c.nodes.first())
                    .and_then(|n| n.devices.first())
                {
                    bricks[0].device = other.id;
                }
            }
            "lie-arbiter-role" => bricks[0].role = BrickRole::Arbiter,
            _ => {}
        }
        Ok(layout)
    }
}

impl Durability for Hostile {
    fn decide(_claim: &Claim, settings: &Settings) -> Result<DurabilityDecision, String> {
        let mode = mode(settings);
        common(mode);
        let mut decision = DurabilityDecision::new(Scheme::Replicate {
            count: 3,
            arbiter: false,
        });
        match mode {
            "refuse" => return Err("hostile policy refuses politely".into()),
            "lie-scheme" => {
                decision.scheme = Scheme::Replicate {
                    count: 1,
                    arbiter: true,
                }
            }
            "lie-options" => {
                decision
                    .volume_options
                    .insert("user.aplo.volume-id".into(), "forged".into());
            }
            "lie-reserve" => decision.snapshot_reserve = f64::NAN,
            _ => {}
        }
        Ok(decision)
    }
}

impl Quota for Hostile {
    fn check(request: &QuotaRequest, settings: &Settings) -> Result<Allowance, String> {
        let mode = mode(settings);
        common(mode);
        match mode {
            "refuse" => Err("hostile policy refuses politely".into()),
            "lie-limit" => Ok(Allowance {
                hard_limit: Some(request.claim.requested_bytes / 2),
            }),
            "lie-limit-huge" => Ok(Allowance {
                hard_limit: Some(u64::MAX),
            }),
            _ => Ok(Allowance {
                hard_limit: Some(request.claim.requested_bytes),
            }),
        }
    }
}

aplo_policy_sdk::export!(Hostile: placement, durability, quota);
