//! Build script: gives the C shared library its soname on Linux.
//!
//! The version script (abi/sekura.map, node SEKURA_0) is not passed here. rustc already gives
//! the linker its own version script for a cdylib, listing every `#[no_mangle]` function by
//! exact name: GNU ld refuses to combine it with a second one ("anonymous version tag cannot
//! be combined with other version tags"), and lld lets the exact names win, so no symbol
//! would get the SEKURA_0 version. abi/link.sh therefore links the installed
//! libsekura.so from libsekura.a with the version script; target/*/libsekura.so, which cargo
//! makes, is for in-tree use and carries the same soname but no symbol versions.

use std::env;

/// The soname's number: bumped only when the C ABI breaks. abi/link.sh uses the same.
const SONAME: &str = "libsekura.so.0";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{SONAME}");
    }
}
