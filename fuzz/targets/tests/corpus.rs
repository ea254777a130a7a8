//! Replays the seeds and every committed corpus file (`fuzz/corpus/<target>/`)
//! through its target on stable, so that a crash a campaign once found stays
//! fixed: each input found crashing is kept there as a regression.

use std::path::Path;

#[test]
fn seeds_pass_every_target() {
    let seeds = acd_fuzz_targets::seeds();
    for (name, target) in acd_fuzz_targets::TARGETS {
        let mine: Vec<_> = seeds.iter().filter(|(n, _)| n == name).collect();
        assert!(!mine.is_empty(), "no seed for {name}");
        for (_, input) in mine {
            target(input);
        }
    }
}

// Seeds that must parse: a seed that stopped parsing would no longer lead a
// campaign past the parser.
#[test]
fn seeds_parse() {
    use acd_core::checkpoint::SignedCheckpoint;
    let log = acd_fuzz_targets::log_signer().verifier();
    for (name, input) in acd_fuzz_targets::seeds() {
        let text = std::str::from_utf8(&input).unwrap_or_default();
        match name {
            "checkpoint" if text.contains("\n\n") => {
                assert!(SignedCheckpoint::open(text, &log).is_ok(), "{text}")
            }
            "tlog_proof" => assert!(acd_core::tlog_proof::TlogProof::parse(text).is_ok()),
            "entry" => assert!(acd_core::entry::LogEntry::decode(&input).is_ok()),
            "witness_request" if text.contains("\n\n") => {
                assert!(acd_core::witness::AddCheckpoint::parse(text).is_ok())
            }
            "evidence" => {
                assert!(serde_json::from_slice::<acd_core::evidence::Evidence>(&input).is_ok())
            }
            _ => {}
        }
    }
}

#[test]
fn committed_corpora_replay() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus");
    let mut replayed = 0usize;
    for (name, target) in acd_fuzz_targets::TARGETS {
        let dir = root.join(name);
        let Ok(files) = std::fs::read_dir(&dir) else {
            panic!("no corpus directory {}", dir.display());
        };
        for file in files.flatten() {
            let input = std::fs::read(file.path()).unwrap_or_default();
            target(&input);
            replayed += 1;
        }
    }
    assert!(replayed > 0);
}
