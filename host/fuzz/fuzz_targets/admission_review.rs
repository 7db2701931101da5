//! The admission webhook's request decoding (`http::admission::review`):
//! no body panics, and for a review it accepts, both answers the webhook
//! can give are AdmissionReviews carrying the request's uid.
#![no_main]

use aplo::front::claim::requested_bytes;
use aplo::http::admission::review::{API_VERSION, KIND, Response, parse};
use libfuzzer_sys::fuzz_target;

fn check(answer: &Response, uid: &str) {
    let json: serde_json::Value =
        serde_json::from_slice(&answer.to_review_json()).expect("the webhook's answer is JSON");
    assert_eq!(json["apiVersion"], API_VERSION);
    assert_eq!(json["kind"], KIND);
    assert_eq!(json["response"]["uid"], uid);
}

fuzz_target!(|data: &[u8]| {
    let Ok(request) = parse(data) else {
        return;
    };
    // What the webhook reads from the claim next must not panic either.
    for claim in [&request.object, &request.old_object].into_iter().flatten() {
        let _ = requested_bytes(claim);
    }
    check(
        &Response::allow(request.uid.clone(), vec!["w".into()]),
        &request.uid,
    );
    check(
        &Response::deny(request.uid.clone(), 403, "Forbidden", "no".into()),
        &request.uid,
    );
});
