#!/usr/bin/env bash
# Multi-node throughput on one machine, beside the peer (NegMAS) in one go:
#   - W1 with B's party on another node than the session (`--placement
#     split`): every offer of B crosses gRPC, against NegMAS' in-process
#     offers/s;
#   - W1 with sessions spread over 2 nodes against 1 node (scaling).
#
#   bash benches/compare_cluster.sh [OUTDIR]
#
# Each node is pinned to one core (taskset), so that two node processes on
# this 2-core machine stand for two 1-core hosts; the launcher shares them.
# REPS (default 3) runs of each, medians reported. PEER=skip reuses the
# peer's results in OUTDIR.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benches/peer.sh
. "$HERE/benches/peer.sh"
PEER_DIR=${PEER_DIR:-$HERE/../shared/peers/negmas}
OUT=${1:-/tmp/negotium-cluster-compare}
REPS=${REPS:-3}
N=${N:-20000}
mkdir -p "$OUT"
if [ "${PEER:-run}" != skip ]; then
  ensure_peer
  ONLY='w1_3x10_boulware-conceder' REPS=$REPS PY=$PEER_PY run_peer "$OUT/peer" bash "$PEER_DIR/run_bench.sh" "$OUT/peer" > "$OUT/peer-summary.json"
fi
cargo build --release --quiet --manifest-path "$HERE/Cargo.toml"
BIN=$HERE/target/release/negotium
# exec: the background job's PID is the node's own, so the trap stops it.
pin() { if command -v taskset > /dev/null && [ "$(nproc)" -ge 2 ]; then exec taskset -c "$1" "${@:2}"; else exec "${@:2}"; fi; }
PIDS=()
trap 'kill "${PIDS[@]}" 2> /dev/null || true' EXIT
start_node() { # core -> sets ADDR (not in $(…): PIDS must grow in this shell)
  local log="$OUT/node-$1.log"
  rm -f "$log"
  (pin "$1" "$BIN" node --listen 127.0.0.1:0) > "$log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do grep -q '^listening on ' "$log" 2> /dev/null && break; sleep 0.05; done
  ADDR=$(sed -n 's/^listening on //p' "$log")
}
start_node 0
A=$ADDR
start_node 1
B=$ADDR
run() { # name args...
  local name=$1; shift
  for r in $(seq 1 "$REPS"); do "$BIN" bench --workload w1 --pair boulware-conceder --n "$N" "$@" --json > "$OUT/$name.r$r.json"; done
}
run split_2 --nodes "$A,$B" --placement split
run spread_1 --nodes "$A"
run spread_2 --nodes "$A,$B"
python3 - "$OUT" <<'PY'
import json, statistics, sys
from pathlib import Path
out = Path(sys.argv[1])
text = (out / "peer-summary.json").read_text()
peer = json.loads(text[text.index("\n{") + 1 if not text.startswith("{") else 0:])
w = peer["w1_3x10_boulware-conceder"]
p = lambda k: w[k]["median"] if isinstance(w[k], dict) else w[k]
def ours(name, key):
    return statistics.median(json.loads(f.read_text())[key] for f in sorted(out.glob(f"{name}.r*.json")))
print("W1 Boulware-Conceder (medians of %d runs)" % len(list(out.glob("split_2.r*.json"))))
print(f"  NegMAS 0.16, one process           {p('negotiations_per_s'):9.1f} neg/s {p('offers_per_s'):10.0f} offers/s")
for name, label in [("split_2", "parties split over 2 nodes"), ("spread_1", "sessions on 1 node"), ("spread_2", "sessions spread over 2 nodes")]:
    n, o = ours(name, "negotiations_per_s"), ours(name, "offers_per_s")
    print(f"  negotium {label:<26}{n:9.1f} neg/s {o:10.0f} offers/s  {o / p('offers_per_s'):6.1f}x NegMAS offers/s")
print(f"  scaling 2 nodes / 1 node: {ours('spread_2','negotiations_per_s') / ours('spread_1','negotiations_per_s'):.2f}x")
PY
