//! Every seed and saved regression of the `scenario` fuzz target, replayed on stable through
//! the same harness the fuzzer calls.

use std::path::Path;

#[test]
fn scenario_corpus_and_regressions_pass() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpora");
    let mut ran = 0;
    for dir in ["scenario", "regressions/scenario"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        let mut files: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for f in files {
            if f.file_name().is_some_and(|n| n == "README.md") {
                continue;
            }
            let data = std::fs::read(&f).expect("read corpus file");
            if let Err(v) = gauntlet_sim::fuzz_scenario(&data) {
                panic!("{}: {v}", f.display());
            }
            ran += 1;
        }
    }
    assert!(ran >= 8, "only {ran} scenario corpus files");
}
