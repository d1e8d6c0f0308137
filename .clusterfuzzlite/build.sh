#!/bin/bash -eu
# Builds every cargo-fuzz target and installs it, with its seed corpus (zipped) and its
# dictionary, where ClusterFuzzLite / OSS-Fuzz expect them ($OUT/<target>,
# $OUT/<target>_seed_corpus.zip, $OUT/<target>.dict).
cd "$SRC/gauntlet/fuzz"
cargo fuzz build -O
targets=(token_bytes token_claims frame_route handshake log_replay oauth_flow)
for t in "${targets[@]}"; do
  cp "target/x86_64-unknown-linux-gnu/release/$t" "$OUT/$t"
  if [ -d "../corpora/$t" ]; then
    (cd "../corpora/$t" && zip -q -r "$OUT/${t}_seed_corpus.zip" .)
  fi
  cp "../corpora/dict/$t.dict" "$OUT/$t.dict"
done
