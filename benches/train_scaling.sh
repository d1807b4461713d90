#!/usr/bin/env bash
# Training throughput with 1 and 2 local workers on this machine, and the
# parameter server's share of a step: `negotium train` on training/ppo.toml
# with 2,048 episodes per iteration and 6 iterations (the first, which loads
# the pool and warms up, is left out by `train` itself).
#
#   bash benches/train_scaling.sh [OUTDIR]
#
# REPS (default 2) runs of each; every run's summary line is printed.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-/tmp/negotium-train-scaling}
REPS=${REPS:-2}
mkdir -p "$OUT"
cargo build --release --quiet --manifest-path "$HERE/Cargo.toml"
BIN=$HERE/target/release/negotium
# The config's paths are relative to its folder: write the variant there.
CFG=$HERE/training/.scaling-bench.toml
trap 'rm -f "$CFG"' EXIT
sed -e 's/^iterations = .*/iterations = 6/' -e 's/^episodes = .*/episodes = 2048/' "$HERE/training/ppo.toml" > "$CFG"
for w in 1 2; do
  for r in $(seq 1 "$REPS"); do
    line=$("$BIN" train "$CFG" --workers "$w" --out "$OUT/w$w.r$r" --quiet 2> /dev/null | grep 'samples/s')
    echo "workers $w run $r: $line"
  done
done
