//! The committed C header and README's option table must be what a fresh build generates
//! (build.rs writes them into OUT_DIR only). `scripts/gen-header.sh` refreshes both, by
//! running this test with WSEMBED_BLESS=1.

use std::path::Path;

const README_BEGIN: &str = "<!-- options:begin (generated: scripts/gen-header.sh) -->\n";
const README_END: &str = "<!-- options:end -->";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn bless() -> bool {
    std::env::var("WSEMBED_BLESS").as_deref() == Ok("1")
}

#[test]
fn committed_header_matches_a_fresh_generation() {
    // Set by build.rs when cbindgen succeeds (a cbindgen failure stops this test from compiling).
    let fresh = std::fs::read_to_string(env!("WSEMBED_GENERATED_HEADER")).unwrap();
    let path = root().join("include/wsembed.h");
    if bless() {
        std::fs::write(&path, &fresh).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap();
    assert!(fresh == committed, "include/wsembed.h is stale: run scripts/gen-header.sh and commit it");
}

#[test]
fn readme_option_table_matches_the_option_table() {
    let fresh = std::fs::read_to_string(env!("WSEMBED_OPTIONS_MD")).unwrap();
    let path = root().join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let start = readme.find(README_BEGIN).expect("README.md has the options markers") + README_BEGIN.len();
    let end = start + readme[start..].find(README_END).expect("README.md has the end marker");
    if bless() {
        std::fs::write(&path, format!("{}{}{}", &readme[..start], fresh, &readme[end..])).unwrap();
        return;
    }
    assert!(readme[start..end] == fresh, "README.md's option table is stale: run scripts/gen-header.sh and commit it");
}

#[test]
fn header_version_macros_match_the_crate() {
    let header = std::fs::read_to_string(env!("WSEMBED_GENERATED_HEADER")).unwrap();
    for (part, value) in [("MAJOR", env!("CARGO_PKG_VERSION_MAJOR")), ("MINOR", env!("CARGO_PKG_VERSION_MINOR")), ("PATCH", env!("CARGO_PKG_VERSION_PATCH"))] {
        assert!(header.contains(&format!("#define WSEMBED_VERSION_{part} {value}\n")), "{part}");
    }
    for option in wsembed::config::OPTIONS {
        assert!(header.contains(&format!(" * {}: {}", option.name, option.kind)), "{} missing from the header", option.name);
    }
}
