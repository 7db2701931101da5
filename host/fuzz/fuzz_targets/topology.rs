//! The heketi topology loader (`model::topology::parse_topology`, JSON or
//! YAML): no input panics, and a file it accepts is parsed the same way
//! twice (the loader is a pure function of the text).
#![no_main]

use aplo::model::topology::parse_topology;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(spec) = parse_topology(text) {
        assert_eq!(parse_topology(text).ok(), Some(spec));
    }
});
