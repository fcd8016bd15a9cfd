//! The committed C header must be what cbindgen generates from the current sources.
//! (`scripts/test-all.sh` builds with WSEMBED_HEADER_CHECK=1 so the build leaves
//! include/wsembed.h alone and this comparison can catch a stale one.)

#[test]
fn committed_header_matches_a_fresh_generation() {
    // Set by build.rs when cbindgen succeeds (a cbindgen failure stops this test from compiling).
    let fresh_path = env!("WSEMBED_GENERATED_HEADER");
    let fresh = std::fs::read_to_string(fresh_path).unwrap();
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/wsembed.h")).unwrap();
    assert!(
        fresh == committed,
        "include/wsembed.h is stale: run `cargo build` (without WSEMBED_HEADER_CHECK) and commit it"
    );
}
