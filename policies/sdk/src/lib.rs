//! # aplo policy SDK
//!
//! Write aplo storage policies in Rust. A policy is a type that implements
//! [`Policy`] plus the trait of each decision it makes ([`Placement`],
//! [`Durability`], [`Quota`]), exported with one macro:
//!
//! ```ignore
//! use aplo_policy_sdk::prelude::*;
//!
//! pub struct Tiny;
//!
//! impl Policy for Tiny {
//!     fn describe() -> Info {
//!         Info::new("Replica 3 for everything", env!("CARGO_PKG_VERSION"))
//!     }
//!     fn validate(settings: &Settings) -> Result<(), String> {
//!         settings.only(&[])
//!     }
//! }
//!
//! impl Durability for Tiny {
//!     fn decide(_claim: &Claim, _settings: &Settings) -> Result<DurabilityDecision, String> {
//!         Ok(DurabilityDecision::new(Scheme::Replicate { count: 3, arbiter: false }))
//!     }
//! }
//!
//! aplo_policy_sdk::export!(Tiny: durability);
//! ```
//!
//! Build it with `cargo build --target wasm32-wasip2 --release`; the
//! component is `target/wasm32-wasip2/release/<crate>.wasm` (under
//! `CARGO_TARGET_DIR` when set: one shared by all your policy crates builds
//! this SDK's dependencies once). Test it with golden files through the
//! production sandbox with `aplo policy test <crate dir>`, and natively with
//! the `testing` module (feature `testing`) when you want a debugger.
//!
//! The decision functions are plain functions over plain types, so they can
//! be called and tested natively as well.
//!
//! ## Placement helpers
//!
//! A placement policy rarely starts from nothing:
//!
//! - [`topology::candidates`] yields every online device with its node and
//!   cluster, as a [`topology::Candidate`]; [`topology::Candidate::tag`]
//!   reads a tag (the device's, else its node's) and
//!   [`topology::Candidate::arbiter_use`] what the device may hold;
//! - [`layout::fill`] lays a volume out set by set: it sizes bricks
//!   ([`layout::Sizing`], with an optional free-space floor), tracks the
//!   room left and asks the policy's `pick` only which devices take the
//!   next set;
//! - [`spread::roomiest_per_node`] and [`spread::Spread`] choose those
//!   devices: one per node, apart by zone or by any tag;
//! - [`layout::first_fitting`] tries one cluster after another.
//!
//! `examples/placement-policy` in the aplo repository builds a rack-aware
//! policy from these, step by step.

#![deny(missing_docs)]

mod convert;
#[cfg(test)]
mod fixtures;
pub mod layout;
pub mod settings;
pub use aplo_policy_types::size;
pub mod spread;
pub mod tags;
#[cfg(feature = "testing")]
pub mod testing;
pub mod topology;

pub use aplo_policy_types::*;
pub use settings::Settings;

/// Bindings generated from the WIT package for its `types` interface. Policy
/// code does not need them: they exist for the glue that [`export!`] writes.
#[doc(hidden)]
#[allow(unsafe_code, missing_docs, clippy::all)]
pub mod wit {
    wit_bindgen::generate!({
        inline: "package aplo:sdk-types; world types { import aplo:policy/types@0.1.0; }",
        path: "../../wit/0.1.0",
        world: "aplo:sdk-types/types",
        generate_all,
    });
    pub use self::aplo::policy::types;
}

include!(concat!(env!("OUT_DIR"), "/export_macro.rs"));

/// What every policy provides: a description and a settings check.
pub trait Policy {
    /// Describe the policy: what it does, its version, its settings.
    fn describe() -> Info;

    /// Check the settings an admin gave it; name the bad key in the error.
    fn validate(settings: &Settings) -> Result<(), String>;
}

/// A placement policy: which devices get the bricks.
pub trait Placement: Policy {
    /// Lay a volume out on the topology, or refuse with the reason.
    fn place(
        request: &PlacementRequest,
        topology: &Topology,
        settings: &Settings,
    ) -> Result<Layout, String>;
}

/// A durability policy: how a volume survives failures.
pub trait Durability: Policy {
    /// Decide the durability for a claim, or refuse with the reason.
    fn decide(claim: &Claim, settings: &Settings) -> Result<DurabilityDecision, String>;
}

/// A quota policy: whether a claim may have the space.
pub trait Quota: Policy {
    /// Allow the claim, or deny it with the reason.
    fn check(request: &QuotaRequest, settings: &Settings) -> Result<Allowance, String>;
}

/// Everything a policy usually needs.
pub mod prelude {
    pub use crate::size::{GIB, KIB, MIB, TIB};
    pub use crate::tags::TagSelector;
    pub use crate::{
        AccessMode, Allowance, Brick, BrickRole, BrickSet, Claim, Cluster, Device, Durability,
        DurabilityDecision, Id, Info, Layout, Node, Pairs, Placement, PlacementRequest, Policy,
        Quota, QuotaRequest, Scheme, Settings, State, Topology, Usage,
    };
}

/// Glue called by the code [`export!`] writes. Not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;

    use crate::wit::types as w;
    use crate::{Durability, Placement, Policy, Quota, Settings};

    fn settings(pairs: Vec<w::Pair>) -> Settings {
        Settings::from_pairs(pairs.into_iter().map(|p| (p.key, p.value)))
    }

    pub fn describe<P: Policy>() -> w::Info {
        P::describe().into()
    }

    pub fn validate<P: Policy>(pairs: Vec<w::Pair>) -> Result<(), String> {
        P::validate(&settings(pairs))
    }

    pub fn place<P: Placement>(
        request: w::PlacementRequest,
        topology: w::Topology,
        pairs: Vec<w::Pair>,
    ) -> Result<w::Layout, String> {
        let topology: crate::Topology = topology.into();
        let answer = P::place(&request.into(), &topology, &settings(pairs)).map(Into::into);
        // The host runs every decision in a fresh instance and discards it
        // afterwards (the contract promises no state survives a call), so
        // freeing a thousand devices' records one by one is wasted work:
        // about a tenth of a placement decision over 1,000 devices.
        std::mem::forget(topology);
        answer
    }

    pub fn decide<P: Durability>(
        claim: w::Claim,
        pairs: Vec<w::Pair>,
    ) -> Result<w::DurabilityDecision, String> {
        P::decide(&claim.into(), &settings(pairs)).map(Into::into)
    }

    pub fn check<P: Quota>(
        request: w::QuotaRequest,
        pairs: Vec<w::Pair>,
    ) -> Result<w::Allowance, String> {
        P::check(&request.into(), &settings(pairs)).map(Into::into)
    }
}
