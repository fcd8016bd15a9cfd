//! Generates the C header from the FFI sources with cbindgen, into `$OUT_DIR/wsembed.h` (a
//! build never writes into the source tree), with the version macros and the option list
//! rendered from the one option table (`src/config/options.rs`). It also renders that table
//! as Markdown into `$OUT_DIR/options.md` for README.md.
//!
//! `scripts/gen-header.sh` copies both into `include/wsembed.h` and README.md on purpose;
//! `tests/header.rs` fails when the committed copies differ from a fresh generation.

use std::fmt::Write as _;
use std::path::PathBuf;

/// The option table without its parser column (see `src/config/mod.rs` for the real one).
macro_rules! options_table {
    ($($name:literal, $kind:literal, $default:literal, $doc:literal, $set:expr;)*) => {
        const OPTIONS: &[(&str, &str, &str, &str)] = &[$(($name, $kind, $default, $doc)),*];
    };
}
include!("src/config/options.rs");

/// Wraps `text` at `width` columns, each line starting with `prefix`.
fn wrap(text: &str, width: usize, prefix: &str, out: &mut String) {
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && prefix.len() + line.len() + 1 + word.len() > width {
            let _ = writeln!(out, "{prefix}{line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        let _ = writeln!(out, "{prefix}{line}");
    }
}

fn header_preamble() -> String {
    let version = |part: &str| std::env::var(format!("CARGO_PKG_VERSION_{part}")).expect("set by cargo");
    let mut out = String::new();
    let _ = writeln!(out, "#define WSEMBED_VERSION_MAJOR {}", version("MAJOR"));
    let _ = writeln!(out, "#define WSEMBED_VERSION_MINOR {}", version("MINOR"));
    let _ = writeln!(out, "#define WSEMBED_VERSION_PATCH {}", version("PATCH"));
    out.push_str("\n/*\n * Options for wsembed_config_set (name: kind, default; generated from the option table):\n");
    for (name, kind, default, doc) in OPTIONS {
        let default = if default.is_empty() { "none".to_owned() } else { format!("\"{default}\"") };
        let _ = writeln!(out, " *\n * {name}: {kind}, default {default}");
        wrap(doc, 96, " *   ", &mut out);
    }
    out.push_str(" */");
    out
}

fn options_markdown() -> String {
    let mut out = String::from("| option | kind | default | meaning |\n|---|---|---|---|\n");
    for (name, kind, default, doc) in OPTIONS {
        let default = if default.is_empty() { "–".to_owned() } else { format!("`{default}`") };
        let _ = writeln!(out, "| `{name}` | {kind} | {default} | {} |", doc.replace('|', "\\|"));
    }
    out
}

fn main() {
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=src/config/options.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    std::fs::write(out_dir.join("options.md"), options_markdown()).expect("write options.md");
    println!("cargo:rustc-env=WSEMBED_OPTIONS_MD={}", out_dir.join("options.md").display());

    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    config.after_includes = Some(header_preamble());
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
}
