//! The gRPC statuses the controller answers with: an engine error's, from
//! its classification, and the refusal of snapshots.

use tonic::Status;

use crate::engine::{EngineError, Kind};
use crate::model::Decision;

/// The status for an engine error, from its classification (the same the
/// REST API and the provisioner answer from): a policy's refusal keeps the
/// policy's words, what may pass on a retry says so, and a fault says what
/// failed while its details stay in aplo's log.
pub fn status(e: EngineError) -> Status {
    let message = e.answer();
    match e.class().kind {
        Kind::Invalid => Status::invalid_argument(message),
        Kind::NotFound => Status::not_found(message),
        Kind::Conflict => Status::aborted(message),
        Kind::Refused(Decision::Quota | Decision::Placement) => Status::resource_exhausted(message),
        Kind::Refused(Decision::Durability | Decision::Validate) => {
            Status::failed_precondition(message)
        }
        Kind::Overloaded => Status::unavailable(message),
        Kind::Fault => Status::internal(message),
    }
}

pub(super) fn no_snapshots() -> Status {
    Status::unimplemented(
        "snapshots are not offered: gluster snapshots need thin-LVM bricks, which aplo's \
         bricks are not on every kernel",
    )
}
