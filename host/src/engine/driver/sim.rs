//! The simulation driver: runs nothing, so that `aplo simulate` plays the
//! real engine against the model only.

use super::{Applied, DeviceFacts, Driver, DriverError, tagged_capacity};
use crate::exec::command::BoxFuture;
use crate::exec::gluster::{BrickStatus, Peer, VolumeInfo};
use crate::model::storage::{DeviceRecord, NodeRecord};
use crate::plan::effect::Effect;

/// Applies nothing: every effect succeeds and changes only the model (the
/// store the engine writes to). A device has the capacity of its
/// `capacity` tag, else the default.
#[derive(Debug, Default)]
pub struct SimDriver {
    default_capacity: u64,
}

impl SimDriver {
    /// A simulation where a prepared device without a `capacity` tag has
    /// `default_capacity` bytes.
    pub fn new(default_capacity: u64) -> SimDriver {
        SimDriver { default_capacity }
    }
}

impl Driver for SimDriver {
    fn apply<'a>(&'a self, effect: &'a Effect) -> BoxFuture<'a, Result<Applied, DriverError>> {
        Box::pin(async move {
            Ok(match effect {
                Effect::PrepareDevice { device, .. } => {
                    Applied::Capacity(tagged_capacity(device)?.unwrap_or(self.default_capacity))
                }
                _ => Applied::Done,
            })
        })
    }

    fn peers<'a>(&'a self, _: &'a [NodeRecord]) -> BoxFuture<'a, Result<Vec<Peer>, DriverError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn volumes<'a>(
        &'a self,
        _: &'a [NodeRecord],
    ) -> BoxFuture<'a, Result<Vec<VolumeInfo>, DriverError>> {
        Box::pin(async {
            Err(DriverError::Refused(
                "a simulation has no gluster to compare with".into(),
            ))
        })
    }

    fn volume_status<'a>(
        &'a self,
        _: &'a [NodeRecord],
        _: &'a str,
    ) -> BoxFuture<'a, Result<Vec<BrickStatus>, DriverError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn device_facts<'a>(
        &'a self,
        _: &'a NodeRecord,
        _: &'a DeviceRecord,
    ) -> BoxFuture<'a, Result<DeviceFacts, DriverError>> {
        Box::pin(async {
            Err(DriverError::Refused(
                "a simulation has no devices to compare with".into(),
            ))
        })
    }
}
