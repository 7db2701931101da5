use std::sync::Arc;
use std::time::Instant;
use aplo::model::testing::{request, topology};
use aplo::model::{GIB, Pairs, Scheme};
use aplo::policy::{Limits, Runtime, RuntimeConfig, bundled};
fn main() {
    let runtime = Arc::new(Runtime::new(RuntimeConfig::default()).unwrap());
    let wasm = bundled::BUNDLED.iter().find(|(n, _)| *n == "zone-spread").unwrap().1;
    let policy = runtime.load("zone-spread", "bundled", wasm, Limits::default()).unwrap();
    let hostile = runtime.load("hostile", "x", &std::fs::read(env!("APLO_HOSTILE_WASM")).unwrap(), Limits::default()).unwrap();
    let req = request(500 * GIB, Scheme::Replicate { count: 3, arbiter: false });
    for (nodes, devs) in [(1usize, 1usize), (10, 10), (25, 10)] {
        let t = topology().zones(4).nodes_per_zone(nodes).devices_per_node(devs).free(4000 * GIB).build();
        let s = Pairs::new();
        for (name, p) in [("zone-spread", &policy), ("hostile-ok", &hostile)] {
            for _ in 0..100 { p.place(&req, &t, &s).unwrap().unwrap(); }
            let n = 1000; let start = Instant::now();
            for _ in 0..n { p.place(&req, &t, &s).unwrap().unwrap(); }
            println!("{name} devices={} avg={:?}", nodes*4*devs, start.elapsed() / n);
        }
        let start = Instant::now();
        for _ in 0..1000 { policy.validate(&Pairs::new()).unwrap().unwrap(); }
        println!("validate() avg={:?}", start.elapsed() / 1000);
    }
}
