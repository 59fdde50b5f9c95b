#!/usr/bin/env bash
# Fuzzes every parser Fovea exposes to user files (see src/fuzzing.rs) with cargo fuzz
# (libFuzzer; needs a nightly toolchain and `cargo install cargo-fuzz`).
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 600 s, every target)
#
# FUZZ_SANITIZER=address adds AddressSanitizer (slower; the default, none, finds panics, aborts,
# overflows and timeouts in the safe Rust the parsers are).
#
# Seeds come from the repository's own fixtures and embedded data (copied into
# fuzz/corpus/<target>, which is not committed). Runs at the lowest CPU priority. Each target's
# final libFuzzer statistics line goes to fuzz/logs/<target>.log; a crash input is saved as
# fuzz/artifacts/<target>/crash-*: copy it to fuzz/regressions/<target>/ so that
# `cargo test --test fuzz_regressions` replays it for ever.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-600}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(keras_json safetensors npy npz idx cifar tflite image voc_xml box_csv tar_gz tfjs_manifest)

seed() { # target, files...
  local t=$1; shift
  mkdir -p "corpus/$t"
  for f in "$@"; do [ -f "$f" ] && cp "$f" "corpus/$t/$(basename "$f")"; done
  return 0
}
r=..
seed keras_json $r/tests/fixtures/keras/*.json
seed safetensors $r/tests/fixtures/keras/seq_cnn.safetensors $r/tests/fixtures/keras/func_misc.safetensors
seed npy $r/tests/fixtures/keras/func_misc.x.npy $r/tests/fixtures/tflite/arith.x.npy
seed npz $r/tests/fixtures/keras/two_io.x.npz
seed idx $r/data/mnist/t10k-labels-idx1-ubyte.gz
seed cifar $r/data/cifar10/batches.meta.txt
seed tflite $r/tests/fixtures/tflite/synthetic/*.tflite $r/data/pretrained/*.tflite
seed image $r/data/membrane/image/0.png $r/data/raccoon/images/raccoon-1*.jpg
seed voc_xml $r/data/raccoon/annotations/raccoon-125.xml $r/data/raccoon/annotations/raccoon-150.xml
seed box_csv $r/data/raccoon/data/test_labels.csv
seed tar_gz $r/data/faces/att_faces_s1_s2.tar.gz
seed tfjs_manifest $r/tests/fixtures/tfjs/*.json

mkdir -p logs
for t in "${targets[@]}"; do
  echo "== $t: $secs s"
  nice -n 19 cargo +nightly fuzz run --debug-assertions --sanitizer "${FUZZ_SANITIZER:-none}" "$t" "corpus/$t" -- -max_total_time="$secs" -max_len=262144 \
    -rss_limit_mb=4096 -print_final_stats=1 >"logs/$t.log" 2>&1 || echo "   $t stopped: see fuzz/logs/$t.log"
  grep -E "^#[0-9]+.*(DONE|pulse|NEW|REDUCE)" "logs/$t.log" | tail -n 1 || true
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "logs/$t.log" || true
  echo "   corpus: $(ls "corpus/$t" | wc -l) files"
done
