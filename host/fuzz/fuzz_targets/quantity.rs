//! The PVC quantity parser (`front::claim::parse_quantity`): no input
//! panics (the `1.5e-2147483648` exponent overflow was one), and a size it
//! accepts survives the way aplo writes sizes back (`quantity`).
#![no_main]

use aplo::front::claim::{parse_quantity, quantity};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(bytes) = parse_quantity(text) {
        let written = quantity(bytes);
        assert_eq!(
            parse_quantity(&written.0),
            Ok(bytes),
            "{text:?} is {bytes} bytes, written back as {:?}",
            written.0
        );
    }
});
