//! Regenerates `include/wsembed.h` from the FFI sources with cbindgen.
//!
//! The fresh header always goes to `$OUT_DIR/wsembed.h`; `include/wsembed.h` is updated too
//! unless `WSEMBED_HEADER_CHECK=1`, in which case the test suite compares the two and fails
//! when the committed header is stale.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-env-changed=WSEMBED_HEADER_CHECK");
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let bindings = match cbindgen::Builder::new().with_crate(&crate_dir).with_config(config).generate() {
        Ok(b) => b,
        Err(e) => {
            // A syntax error is reported better by rustc itself; do not mask it here.
            println!("cargo:warning=cbindgen failed: {e}");
            return;
        }
    };
    let fresh = out_dir.join("wsembed.h");
    bindings.write_to_file(&fresh);
    println!("cargo:rustc-env=WSEMBED_GENERATED_HEADER={}", fresh.display());
    if std::env::var("WSEMBED_HEADER_CHECK").as_deref() != Ok("1") {
        bindings.write_to_file(crate_dir.join("include/wsembed.h"));
    }
}
