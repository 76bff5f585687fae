//! Replays fuzz inputs through the fuzz harness itself (`fuzz/src/harness.rs`, included by
//! path, so the checks are exactly those the fuzzer ran): every crash input kept under
//! `fuzz/regressions/<target>/` and every seed under `fuzz/seeds/<target>/`.
//!
//! A crash found by `cargo fuzz run <target>` becomes a regression test by copying its artifact
//! to `fuzz/regressions/<target>/<short-name>` (see docs/testing.md).
//!
//! The harness uses the core's default features (as the fuzz crate builds it).
#![cfg(all(
    feature = "std",
    feature = "binding",
    feature = "ecdhe",
    feature = "gba"
))]

use std::path::{Path, PathBuf};

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../fuzz/src/harness.rs"]
mod harness;

/// (target, file) for every file under `dir/<target>/`, sorted.
fn inputs(dir: &str) -> Vec<(String, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir);
    let mut out = Vec::new();
    let Ok(targets) = std::fs::read_dir(&root) else {
        return out;
    };
    for t in targets {
        let t = t.unwrap().path();
        if !t.is_dir() {
            continue;
        }
        let target = t.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            harness::TARGETS.contains(&target.as_str()),
            "{}: no fuzz target named {target}",
            t.display()
        );
        for f in std::fs::read_dir(&t).unwrap() {
            let f = f.unwrap().path();
            if f.is_file() && !f.file_name().unwrap().to_string_lossy().starts_with('.') {
                out.push((target.clone(), f));
            }
        }
    }
    out.sort();
    out
}

/// Replays every input; panics listing all that panicked.
fn replay(dir: &str) -> usize {
    let all = inputs(dir);
    let mut failed = Vec::new();
    for (target, file) in &all {
        let data = std::fs::read(file).unwrap();
        let r = std::panic::catch_unwind(|| harness::run(target, &data));
        match r {
            Ok(known) => assert!(known),
            Err(_) => failed.push(format!("{target} {}", file.display())),
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} inputs panicked (reproduce one with `cargo fuzz run <target> <file>` in \
         fuzz/):\n  {}",
        failed.len(),
        all.len(),
        failed.join("\n  ")
    );
    all.len()
}

#[test]
fn fuzz_regressions_replay_without_panic() {
    let n = replay("fuzz/regressions");
    eprintln!("{n} regression inputs replayed");
}

#[test]
fn fuzz_seeds_replay_without_panic() {
    let n = replay("fuzz/seeds");
    assert!(n > 0, "no seeds under fuzz/seeds");
    let with_seeds: Vec<String> = inputs("fuzz/seeds").into_iter().map(|(t, _)| t).collect();
    for t in harness::TARGETS {
        assert!(
            with_seeds.iter().any(|s| s == t),
            "no seeds for the fuzz target {t} (fuzz/gen_corpus.rs writes them)"
        );
    }
}

/// The session seeds (PSK and ECDHE-ECDSA, TLS and DTLS, both sides) are recorded handshakes:
/// if the core's wire bytes change they stop replaying to the end and fuzzing starts shallow.
/// Regenerate them then.
#[test]
fn fuzz_session_seeds_replay_to_the_end() {
    let full = harness::Outcome {
        connected: true,
        app_data: true,
        peer_closed: true,
        failed: false,
    };
    let mut stale = Vec::new();
    let mut seen = Vec::new();
    for (target, file) in inputs("fuzz/seeds") {
        let data = std::fs::read(&file).unwrap();
        let Some(outcome) = harness::session_outcome(&target, &data) else {
            continue;
        };
        if !seen.contains(&target) {
            seen.push(target.clone());
        }
        if outcome != full {
            stale.push(format!("{} ({outcome:?})", file.display()));
        }
    }
    for (t, ..) in harness::SESSION_TARGETS {
        assert!(
            seen.iter().any(|s| s == t),
            "no seeds for the session target {t}"
        );
    }
    assert!(
        stale.is_empty(),
        "stale fuzz seeds; regenerate with \
         `cargo run --manifest-path fuzz/Cargo.toml --example gen_corpus`:\n  {}",
        stale.join("\n  ")
    );
}

/// The `gba` client seeds of a whole Ub exchange (`client-exchange*`, `client-sync-failure`)
/// replay to a bootstrap the UE accepts (the BSF's Authentication-Info verified); if the core's
/// Ub messages change they stop there and fuzzing starts shallow. Regenerate them then.
#[test]
fn fuzz_gba_seeds_reach_a_bootstrap() {
    let mut reached = Vec::new();
    let mut stale = Vec::new();
    for (target, file) in inputs("fuzz/seeds") {
        if target != "gba" {
            continue;
        }
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let data = std::fs::read(&file).unwrap();
        let Some(n) = harness::gba_bootstraps(&data) else {
            continue;
        };
        if name.starts_with("client-exchange") || name == "client-sync-failure" {
            if n == 1 {
                reached.push(name);
            } else {
                stale.push(name);
            }
        }
    }
    assert!(
        stale.is_empty(),
        "stale gba seeds (no bootstrap); regenerate with \
         `cargo run --manifest-path fuzz/Cargo.toml --example gen_corpus`:\n  {}",
        stale.join("\n  ")
    );
    assert!(
        reached.len() >= 2,
        "no gba seed reaches a bootstrap: {reached:?}"
    );
}
