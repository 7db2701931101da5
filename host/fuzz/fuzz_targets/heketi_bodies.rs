//! The heketi REST request bodies (`http::heketi`): the first byte picks a
//! body type, the rest is the JSON. No body panics, a body that decodes
//! survives a write and a second read unchanged, and the checks the API
//! runs on node and device bodies do not panic.
#![no_main]

use aplo::http::heketi::{
    BrickEvictOptions, ClusterFlags, DeviceAddRequest, DeviceDeleteOptions, NodeAddRequest,
    StateRequest, TagChange, TagsChangeRequest, VolumeCreateRequest, VolumeExpandRequest,
    check_device_add, check_healcheck, check_node_add, check_tags, parse_state,
};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Decode `json` as a `T`; if it decodes, write it and read it back.
fn round_trip<T>(json: &[u8]) -> Option<T>
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    let value: T = serde_json::from_slice(json).ok()?;
    let written = serde_json::to_vec(&value).expect("a decoded body serializes");
    let again: T = serde_json::from_slice(&written).expect("a written body decodes");
    assert_eq!(again, value, "{}", String::from_utf8_lossy(&written));
    Some(value)
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, json)) = data.split_first() else {
        return;
    };
    match kind % 9 {
        0 => {
            round_trip::<VolumeCreateRequest>(json);
        }
        1 => {
            round_trip::<VolumeExpandRequest>(json);
        }
        2 => {
            if let Some(request) = round_trip::<NodeAddRequest>(json) {
                let _ = check_node_add(&request);
            }
        }
        3 => {
            if let Some(request) = round_trip::<DeviceAddRequest>(json) {
                let _ = check_device_add(&request);
            }
        }
        4 => {
            if let Some(request) = round_trip::<StateRequest>(json) {
                let _ = parse_state(&request.state);
                let _ = check_healcheck(&request.healcheck);
            }
        }
        5 => {
            if let Some(request) = round_trip::<TagsChangeRequest>(json) {
                let _ = check_tags(&request.tags);
                let _ = TagChange::parse(&request.change_type);
            }
        }
        6 => {
            round_trip::<ClusterFlags>(json);
        }
        7 => {
            round_trip::<DeviceDeleteOptions>(json);
        }
        _ => {
            round_trip::<BrickEvictOptions>(json);
        }
    }
});
