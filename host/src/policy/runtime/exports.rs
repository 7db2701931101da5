//! The contract's interfaces, which of them a compiled component exports,
//! and, when one does not fit, the signatures it has instead.

use wasmtime::component::{Component, InstancePre};

use super::GuestState;
use crate::model::Decision;
use crate::policy::bindings::{durability, placement, quota, settings};
use crate::policy::error::LoadError;

/// The decision interfaces a module exports.
#[derive(Clone)]
pub(crate) struct Exports {
    pub(super) settings: settings::GuestIndices,
    pub(super) durability: Option<durability::GuestIndices>,
    pub(super) placement: Option<placement::GuestIndices>,
    pub(super) quota: Option<quota::GuestIndices>,
}

/// The interface names of the contract, version 0.1.0.
pub const INTERFACES: [(&str, Option<Decision>); 4] = [
    ("aplo:policy/settings@0.1.0", None),
    ("aplo:policy/durability@0.1.0", Some(Decision::Durability)),
    ("aplo:policy/placement@0.1.0", Some(Decision::Placement)),
    ("aplo:policy/quota@0.1.0", Some(Decision::Quota)),
];

impl Exports {
    pub(super) fn find(
        component: &Component,
        pre: &InstancePre<GuestState>,
    ) -> Result<Exports, LoadError> {
        let present = |name: &str| component.get_export_index(None, name).is_some();
        if !present(INTERFACES[0].0) {
            let exported: Vec<String> = component
                .component_type()
                .exports(component.engine())
                .map(|(n, _)| n.to_owned())
                .collect();
            return Err(LoadError::NoSettings {
                interface: INTERFACES[0].0,
                exported: if exported.is_empty() {
                    "none".into()
                } else {
                    exported.join(", ")
                },
            });
        }
        /// The indices of an exported interface; `None` when it is not
        /// exported, an error when it is exported with the wrong types.
        fn indices<I>(
            present: bool,
            interface: &'static str,
            new: impl FnOnce() -> wasmtime::Result<I>,
        ) -> Result<Option<I>, LoadError> {
            if !present {
                return Ok(None);
            }
            new()
                .map(Some)
                .map_err(|error| LoadError::WrongTypes { interface, error })
        }
        let [settings_name, durability_name, placement_name, quota_name] =
            INTERFACES.map(|(name, _)| name);
        let exports = Exports {
            settings: indices(true, settings_name, || settings::GuestIndices::new(pre))?
                .expect("present"),
            durability: indices(present(durability_name), durability_name, || {
                durability::GuestIndices::new(pre)
            })?,
            placement: indices(present(placement_name), placement_name, || {
                placement::GuestIndices::new(pre)
            })?,
            quota: indices(present(quota_name), quota_name, || {
                quota::GuestIndices::new(pre)
            })?,
        };
        if exports.decisions().is_empty() {
            return Err(LoadError::NoDecision);
        }
        Ok(exports)
    }

    pub(super) fn decisions(&self) -> Vec<Decision> {
        let mut out = Vec::new();
        if self.durability.is_some() {
            out.push(Decision::Durability);
        }
        if self.placement.is_some() {
            out.push(Decision::Placement);
        }
        if self.quota.is_some() {
            out.push(Decision::Quota);
        }
        out
    }
}

/// The functions an exported interface has, with their types, for an error
/// that names them: `decide: func(requested: u64) -> u32`.
pub(super) fn signatures(component: &Component, interface: &str) -> Vec<String> {
    use wasmtime::component::types::ComponentItem;
    let engine = component.engine();
    let ty = component.component_type();
    let Some(ComponentItem::ComponentInstance(instance)) =
        ty.get_export(engine, interface).map(|e| e.ty)
    else {
        return vec!["no functions".into()];
    };
    instance
        .exports(engine)
        .filter_map(|(name, item)| match item.ty {
            ComponentItem::ComponentFunc(func) => {
                let params: Vec<String> = func
                    .params()
                    .map(|(param, ty)| format!("{param}: {}", type_name(&ty)))
                    .collect();
                let results: Vec<&str> = func.results().map(|ty| type_name(&ty)).collect();
                Some(format!(
                    "{name}: func({}){}",
                    params.join(", "),
                    if results.is_empty() {
                        String::new()
                    } else {
                        format!(" -> {}", results.join(", "))
                    }
                ))
            }
            _ => None,
        })
        .collect()
}

/// A component type's kind, as WIT spells it.
fn type_name(ty: &wasmtime::component::types::Type) -> &'static str {
    use wasmtime::component::types::Type;
    match ty {
        Type::Bool => "bool",
        Type::S8 => "s8",
        Type::U8 => "u8",
        Type::S16 => "s16",
        Type::U16 => "u16",
        Type::S32 => "s32",
        Type::U32 => "u32",
        Type::S64 => "s64",
        Type::U64 => "u64",
        Type::Float32 => "f32",
        Type::Float64 => "f64",
        Type::Char => "char",
        Type::String => "string",
        Type::List(_) | Type::FixedLengthList(_) => "list",
        Type::Map(_) => "map",
        Type::Record(_) => "record",
        Type::Tuple(_) => "tuple",
        Type::Variant(_) => "variant",
        Type::Enum(_) => "enum",
        Type::Option(_) => "option",
        Type::Result(_) => "result",
        Type::Flags(_) => "flags",
        Type::Own(_) | Type::Borrow(_) => "resource",
        Type::Future(_) => "future",
        Type::Stream(_) => "stream",
        Type::ErrorContext => "error-context",
    }
}
