#!/usr/bin/env bash
# Runs the peer (NegMAS, ../shared/peers/negmas) and `negotium bench` on the
# reference workload W in one go and prints their figures side by side.
#
#   bash benches/compare_negmas.sh [OUTDIR]
#
# Installs NegMAS 0.16.0 into /tmp/negmas-venv on first use (PyPI). REPS
# (default 3) runs of each; medians are reported. Set PEER=skip to reuse
# peer results already in OUTDIR.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benches/peer.sh
. "$HERE/benches/peer.sh"
PEER_DIR=${PEER_DIR:-$HERE/../shared/peers/negmas}
OUT=${1:-/tmp/negotium-compare}
REPS=${REPS:-3}
mkdir -p "$OUT"
if [ "${PEER:-run}" != skip ]; then
  ensure_peer
  ONLY='w1_|w2_|w3_|w4_' REPS=$REPS PY=$PEER_PY run_peer "$OUT/peer" bash "$PEER_DIR/run_bench.sh" "$OUT/peer" > "$OUT/peer-summary.json"
fi
cargo build --release --quiet --manifest-path "$HERE/Cargo.toml"
BIN=$HERE/target/release/negotium
run() { # name args...
  local name=$1; shift
  for r in $(seq 1 "$REPS"); do "$BIN" bench "$@" --json > "$OUT/$name.r$r.json"; done
}
run w1_direct --workload w1 --pair boulware-conceder --n 100000 --engine direct
run w1_direct_1thread --workload w1 --pair boulware-conceder --n 50000 --engine direct --threads 1
run w1_actors --workload w1 --pair boulware-conceder --n 20000 --engine actors
run w4_direct --workload w4 --pair boulware-conceder --n 4000 --engine direct
run w1_check_bc --workload w1 --pair boulware-conceder --n 200
run w2_check_bb --workload w1 --pair boulware-boulware --n 200
run w3_check_ll --workload w1 --pair linear-linear --n 200
run w4_check_bc --workload w4 --pair boulware-conceder --n 100
run actors_10k_concurrent --workload w1 --n 10000 --engine actors --concurrency 10000
python3 - "$OUT" <<'PY'
import json, statistics, sys
from pathlib import Path
out = Path(sys.argv[1])
text = (out / "peer-summary.json").read_text()
# run_bench.sh prints one progress line per run, then the summary object.
peer = json.loads(text[text.index("\n{") + 1 if not text.startswith("{") else 0:])
def ours(name, key):
    vals = [json.loads(f.read_text())[key] for f in sorted(out.glob(f"{name}.r*.json"))]
    return statistics.median(vals) if isinstance(vals[0], (int, float)) else vals[0]
p = lambda w, k: peer[w][k]["median"] if isinstance(peer[w][k], dict) else peer[w][k]
w1 = p("w1_3x10_boulware-conceder", "negotiations_per_s")
w4 = p("w4_5x10_boulware-conceder", "negotiations_per_s")
print("throughput (medians of %s runs)" % len(list(out.glob("w1_direct.r*.json"))))
print(f"  NegMAS W1 B-C          {w1:10.1f} neg/s  {p('w1_3x10_boulware-conceder','offers_per_s'):10.0f} offers/s  {p('w1_3x10_boulware-conceder','max_rss_kb')/1024:.0f} MiB")
for name in ["w1_direct", "w1_direct_1thread", "w1_actors"]:
    n = ours(name, "negotiations_per_s")
    print(f"  negotium {name:<18}{n:10.1f} neg/s  {ours(name,'offers_per_s'):10.0f} offers/s  {n/w1:7.0f}x  peak {ours(name,'peak_rss_mib'):.0f} MiB")
print(f"  NegMAS W4 B-C          {w4:10.2f} neg/s  {p('w4_5x10_boulware-conceder','max_rss_kb')/1024:.0f} MiB")
n = ours("w4_direct", "negotiations_per_s")
print(f"  negotium w4_direct     {n:10.1f} neg/s  {n/w4:7.0f}x  peak {ours('w4_direct','peak_rss_mib'):.0f} MiB")
print(f"  10,000 concurrent actor sessions: peak {ours('actors_10k_concurrent','peak_rss_mib'):.0f} MiB")
print("agreement rate / mean rounds / mean utilities (peer vs negotium, same 200 or 100 negotiations)")
for peer_name, name in [("w1_3x10_boulware-conceder","w1_check_bc"),("w2_3x10_boulware-boulware","w2_check_bb"),
                        ("w3_3x10_linear-linear","w3_check_ll"),("w4_5x10_boulware-conceder","w4_check_bc")]:
    mu = ours(name, "mean_utilities")
    print(f"  {peer_name:<28} peer {p(peer_name,'agreement_rate'):.3f} {p(peer_name,'rounds_mean'):7.3f} "
          f"({p(peer_name,'mean_util_a_all'):.10f}, {p(peer_name,'mean_util_b_all'):.10f})")
    print(f"  {'':<28} ours {ours(name,'agreement_rate'):.3f} {ours(name,'rounds_mean'):7.3f} ({mu[0]:.10f}, {mu[1]:.10f})")
PY
