//! A policy that never answers, for the tests that need one (shared with
//! `#[path]` by the test files that use it).

/// A core-module durability policy in WAT whose `decide` never returns,
/// wrapped as a component (the shape of host/tests/common's WAT guests).
pub fn policy() -> Vec<u8> {
    let wat = r#"(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
                           (i32.xor (i32.sub (local.get 2) (i32.const 1)) (i32.const -1))))
    (global.set $heap (i32.add (local.get $p) (local.get 3)))
    (local.get $p))
  (data (i32.const 16) "\40\00\00\00\03\00\00\00\48\00\00\00\05\00\00\00\00\00\00\00\00\00\00\00")
  (data (i32.const 64) "wat")
  (data (i32.const 72) "0.0.0")
  (data (i32.const 96) "\00\00\00\00\00\00\00\00\00\00\00\00")
  (func (export "aplo:policy/settings@0.1.0#describe") (result i32) (i32.const 16))
  (func (export "aplo:policy/settings@0.1.0#validate") (param i32 i32) (result i32) (i32.const 96))
  (func (export "aplo:policy/durability@0.1.0#decide")
    (param i32 i32 i32 i32 i32 i32 i32 i32 i64 i32 i32 i32 i32) (result i32)
    (loop $forever (br $forever))
    (i32.const 0)))"#;
    let mut module = wat::parse_str(wat).expect("valid WAT");
    let mut resolve = wit_parser::Resolve::default();
    let (package, _) = resolve
        .push_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../wit/0.1.0"))
        .expect("WIT parses");
    let world = resolve
        .select_world(&[package], Some("durability-policy"))
        .expect("world exists");
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
        false,
    )
    .expect("embed metadata");
    wit_component::ComponentEncoder::default()
        .module(&module)
        .expect("module accepted")
        .validate(true)
        .encode()
        .expect("component encodes")
}
