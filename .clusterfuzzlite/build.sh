#!/bin/bash -eu
# Builds every cargo-fuzz target and installs it where ClusterFuzzLite / OSS-Fuzz expect it:
# $OUT/<target>, its seed corpus $OUT/<target>_seed_corpus.zip, its dictionary
# $OUT/<target>.dict, and $OUT/<target>.options with the -max_len fuzz/run.sh uses (an input
# longer than the harness reads only wastes executions, and some harnesses need long inputs).
# The target list is fuzz/Cargo.toml's, kept in step with .ci/fuzz-smoke.
cd "$SRC/gauntlet/fuzz"
# The Dockerfile pins the toolchain; RUSTC_BOOTSTRAP lets stable take cargo-fuzz's -Z flags.
export RUSTC_BOOTSTRAP=1
# Without -O cargo-fuzz keeps debug assertions and overflow checks in its optimised build: an
# overflow the release binary would wrap silently is a crash the fuzzer reports.
cargo fuzz build
targets=(token_bytes token_claims frame_route handshake log_replay oauth_flow scenario)
for t in "${targets[@]}"; do
  cp "target/x86_64-unknown-linux-gnu/release/$t" "$OUT/$t"
  if [ -d "../corpora/$t" ]; then
    (cd "../corpora/$t" && zip -q -r "$OUT/${t}_seed_corpus.zip" .)
  fi
  if [ -f "../corpora/dict/$t.dict" ]; then
    cp "../corpora/dict/$t.dict" "$OUT/$t.dict"
  fi
  max_len=$(./run.sh --max-len "$t")
  printf '[libfuzzer]\nmax_len = %s\ntimeout = 10\nrss_limit_mb = 2048\n' "$max_len" >"$OUT/$t.options"
done
