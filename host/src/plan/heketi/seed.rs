//! Heketi's randomness made deterministic: the seed of one `place` call and
//! the generator drawn from it.

use super::HeketiOptions;
use crate::model::{PlacementRequest, Topology};

/// The seed of one `place` call: the options' seed mixed with the request
/// and the topology's state, so that equal inputs give equal layouts and
/// successive claims of a simulation draw differently.
pub(super) fn stream_seed(
    request: &PlacementRequest,
    topology: &Topology,
    options: &HeketiOptions,
) -> u64 {
    let mut hash = Fnv::new();
    hash.u64(options.seed);
    hash.bytes(request.volume_name.as_bytes());
    hash.u64(request.bytes);
    for cluster in &topology.clusters {
        hash.u128(cluster.id.0);
        for node in &cluster.nodes {
            hash.u128(node.id.0);
            for device in &node.devices {
                hash.u128(device.id.0);
                hash.u64(device.free_bytes);
                hash.u64(u64::from(device.brick_count));
            }
        }
    }
    hash.0
}

/// FNV-1a, 64 bits: a stable hash (std's is not guaranteed across releases).
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn u64(&mut self, value: u64) {
        self.bytes(&value.to_le_bytes());
    }

    fn u128(&mut self, value: u128) {
        self.bytes(&value.to_le_bytes());
    }
}

/// SplitMix64: a small deterministic generator standing in for heketi's
/// random UUIDs and Go's random map order.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// What heketi reads from a fresh UUID: its first 7 hex digits.
    pub(super) fn brick_set_id(&mut self) -> u64 {
        self.next() >> 36
    }

    pub(super) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}
