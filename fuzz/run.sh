#!/usr/bin/env bash
# Runs one fuzz target with its seed corpus and dictionary on stable Rust (RUSTC_BOOTSTRAP).
#
#   fuzz/run.sh <target> [seconds] [extra libFuzzer flags...]
#   fuzz/run.sh --max-len <target>      prints the target's -max_len (ClusterFuzzLite's
#                                        build.sh writes it into <target>.options)
#
# New interesting inputs go to fuzz/work/<target>/ (not committed); the committed seeds in
# corpora/<target>/ are read, never written. Crashes land in fuzz/artifacts/<target>/.
# Exit status: 0 when the time ran out without a crash, non-zero (and the artifact path
# printed) on a crash, leak, timeout or oracle violation.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
print_max_len=0
if [ "${1:-}" = "--max-len" ]; then
  print_max_len=1
  shift
fi
target="${1:?usage: fuzz/run.sh <target> [seconds] [libFuzzer flags...]}"
secs="${2:-60}"
shift $(( $# >= 2 ? 2 : 1 ))

case "$target" in
  token_bytes)  max_len=8192 ;;
  frame_route)  max_len=20000 ;;
  log_replay)   max_len=65536 ;;
  token_claims|handshake|oauth_flow) max_len=4096 ;;
  scenario)     max_len=128 ;;
  *) echo "unknown target $target (see fuzz/Cargo.toml)" >&2; exit 2 ;;
esac
if [ "$print_max_len" -eq 1 ]; then
  echo "$max_len"
  exit 0
fi

seeds="$here/../corpora/$target"
dict="$here/../corpora/dict/$target.dict"
work="$here/work/$target"
mkdir -p "$work" "$here/artifacts/$target"

cd "$here"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "$work" "$seeds" -- \
  -dict="$dict" -max_total_time="$secs" -max_len="$max_len" \
  -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
  echo "fuzz/run.sh: $target failed (exit $status)" >&2
  grep -Eo '(Test unit written to|artifact_prefix=.*; Test unit written to) [^ ]+' "$log" \
    | sed 's/^/fuzz\/run.sh: crash artifact: /' >&2 || true
fi
exit "$status"
