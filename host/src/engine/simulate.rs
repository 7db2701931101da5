//! Simulations: an engine over a copy of the state, in memory, with a
//! driver that runs nothing, and a workload's claims played through it
//! (`aplo simulate` and `POST /aplo/v1/simulate`).

use std::sync::Arc;

use super::{CreateRequest, Engine, EngineConfig, EngineError};
use crate::engine::driver::SimDriver;
use crate::model::storage::Snapshot;
use crate::plan::simulate::{self, Report, SimClaim};
use crate::policy::Registry;
use crate::store::MemoryStore;

impl Engine {
    /// An engine for a simulation: it starts from `start`, keeps its
    /// state in memory (nothing is written anywhere), runs nothing (new
    /// devices are `device_size` bytes) and derives its ids from `seed`.
    pub fn simulation(
        start: Snapshot,
        device_size: u64,
        registry: Arc<Registry>,
        seed: u64,
    ) -> Result<Engine, EngineError> {
        Engine::new(
            Arc::new(MemoryStore::new(start)),
            Arc::new(SimDriver::new(device_size)),
            registry,
            EngineConfig {
                id_seed: Some(seed),
                ..EngineConfig::default()
            },
        )
    }

    /// Create a volume for each claim, in order, and report what the run
    /// amounts to.
    pub async fn play(&self, claims: &[SimClaim]) -> Report {
        let mut report = Report::of(claims.len());
        for claim in claims {
            let request = CreateRequest {
                name: Some(claim.name.clone()),
                bytes: claim.bytes,
                parameters: claim.parameters.clone(),
                claim: Some(claim.claim()),
                ..CreateRequest::default()
            };
            let made = self.create_volume(request).await;
            report.record(&claim.name, made.map(|v| v.bytes));
        }
        let after = self.snapshot();
        report.measure(&self.policy_topology(), &|id| {
            simulate::device_label(&after, id)
        });
        report
    }
}
