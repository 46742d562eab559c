//! The cold build and the binary stay small (issue 10, point 22): the figures are measured by
//! `benches/cold-build.sh` and recorded in BENCHMARKS.md; these checks keep the two choices that
//! cut them from being undone by accident.

use std::path::Path;

fn read(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(name)).unwrap()
}

/// aws-lc-sys compiles a C library for minutes on a 2-core machine; *ring* is the TLS provider.
#[test]
fn the_tls_stack_compiles_no_aws_lc() {
    let lock = read("Cargo.lock");
    for heavy in ["aws-lc-sys", "aws-lc-rs", "regex-automata"] {
        assert!(
            !lock.contains(&format!("name = \"{heavy}\"")),
            "{heavy} is back in Cargo.lock: see BENCHMARKS.md, \"Cold build and binary\""
        );
    }
    assert!(
        lock.contains("name = \"ring\""),
        "ring is the rustls provider"
    );
}

/// A release binary without DWARF: 77 MB with line tables, most of it debug info.
#[test]
fn the_release_profile_carries_no_debug_info() {
    let manifest: toml::Table = read("Cargo.toml").parse().unwrap();
    let release = &manifest["profile"]["release"];
    assert_eq!(release.get("debug").and_then(|d| d.as_bool()), Some(false));
    assert_eq!(
        release.get("strip").and_then(|s| s.as_str()),
        Some("debuginfo")
    );
}
