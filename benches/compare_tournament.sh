#!/usr/bin/env bash
# Runs the peer's NegMAS tournament (../shared/peers/negmas/run_tournament.sh:
# cartesian_tournament of boulware, conceder, linear and NaiveTitForTat on the
# W1-like domains with seeds 1..3, 5 repetitions, rotate_ufuns, self-play:
# 480 negotiations) and the same tournament in negotium, in one go, and prints
# wall time, negotiations/s, the speed ratio and both per-strategy rankings.
#
#   bash benches/compare_tournament.sh [OUTDIR]
#
# REPS (default 3) runs of each; medians are reported. NJOBS (default "-1 2")
# are the peer's settings: -1 serial in one process, 2 two worker processes.
# Installs NegMAS 0.16.0 into /tmp/negmas-venv on first use (PyPI). PEER=skip
# reuses peer results already in OUTDIR. CHECK=1 (default) also runs both
# tournaments without tit-for-tat (a copy of the peer's script in OUTDIR with
# that one competitor removed; shared/ is not touched) and compares the
# per-strategy scores number for number.
#
# negotium's tit-for-tat is not NegMAS' NaiveTitForTatNegotiator. Ours concedes
# the share of its utility range that the opponent has conceded since its
# first offer (measured in our utility; kindness 1, AC_next acceptance).
# NegMAS' naive one concedes, step by step, the utility the opponent's last
# offer gained it (a zero-sum partner model; kindness 0, a forced minimal
# concession early on). The other three are the same time-dependent
# strategies on the same domains.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benches/peer.sh
. "$HERE/benches/peer.sh"
PEER_DIR=${PEER_DIR:-$HERE/../shared/peers/negmas}
OUT=${1:-/tmp/negotium-compare-tournament}
REPS=${REPS:-3}
NJOBS=${NJOBS:--1 2}
mkdir -p "$OUT"
if [ "${PEER:-run}" != skip ]; then
  ensure_peer
  REPS=$REPS NJOBS=$NJOBS PY=$PEER_PY run_peer "$OUT/peer" bash "$PEER_DIR/run_tournament.sh" "$OUT/peer" \
    > "$OUT/peer-summary.json"
fi
if [ "${CHECK:-1}" = 1 ]; then
  PEER_DIR=$PEER_DIR python3 - "$PEER_DIR/bench_tournament.py" "$OUT/bench_tournament_no_tft.py" <<'PY'
import os, sys
src, dst = sys.argv[1], sys.argv[2]
s = open(src).read()
s = s.replace("        NaiveTitForTatNegotiator,\n    ]", "    ]")
s = s.replace("sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))",
              "sys.path.insert(0, %r)" % os.path.dirname(os.path.abspath(src)))
assert "NaiveTitForTatNegotiator,\n    ]" not in s
open(dst, "w").write(s)
PY
  "$PEER_PY" "$OUT/bench_tournament_no_tft.py" --reps 1 > "$OUT/peer-no-tft.json" 2> "$OUT/peer-no-tft.log" || {
    echo "peer: bench_tournament_no_tft.py failed; the end of $OUT/peer-no-tft.log:" >&2
    tail -n 20 "$OUT/peer-no-tft.log" >&2
    exit 1
  }
fi
cargo build --release --quiet --manifest-path "$HERE/Cargo.toml"
BIN=$HERE/target/release/negotium

# The same tournament: W1 domains of seeds 1..3 (A values high and opens, B
# values low: bench_tournament.py's ufuns), every ordered pair of the four
# strategies (self-play included), both opening orders (rotate_ufuns), 5 reps.
tournament() { # trace
  cat <<EOF
name = "negmas-peer-w1"
strategies = ["boulware", "conceder", "linear", "tit-for-tat"]
workload = { name = "w1", seeds = [1, 2, 3] }
repetitions = 5
self_play = true
rotate_order = true
seed = 0
trace = $1
EOF
}
tournament false > "$OUT/negotium.toml"
tournament false | sed -e 's/, "tit-for-tat"//' -e 's/repetitions = 5/repetitions = 1/' > "$OUT/negotium-no-tft.toml"
rm -rf "$OUT/negotium-no-tft"
"$BIN" tournament "$OUT/negotium-no-tft.toml" --out "$OUT/negotium-no-tft" --json > "$OUT/negotium-no-tft.json"
tournament true > "$OUT/negotium-trace.toml"
for variant in negotium negotium-trace; do
  for r in $(seq 1 "$REPS"); do
    rm -rf "$OUT/$variant.r$r"
    t0=$EPOCHREALTIME
    "$BIN" tournament "$OUT/$variant.toml" --out "$OUT/$variant.r$r" --json > "$OUT/$variant.r$r.json"
    t1=$EPOCHREALTIME
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "{\"process_wall_s\": %.6f}\n", b - a }' > "$OUT/$variant.r$r.process.json"
  done
done

python3 - "$OUT" <<'PY'
import json, statistics, sys
from pathlib import Path
out = Path(sys.argv[1])
text = (out / "peer-summary.json").read_text()
# run_tournament.sh prints one progress line per run, then the summary object.
peer = json.loads(text[text.index("\n{") + 1 if not text.startswith("{") else 0:])

def ours(variant):
    runs = [json.loads(f.read_text()) for f in sorted(out.glob(f"{variant}.r*.json")) if ".process." not in f.name]
    procs = [json.loads(f.read_text())["process_wall_s"] for f in sorted(out.glob(f"{variant}.r*.process.json"))]
    return runs, procs

med = lambda xs: statistics.median(xs)
runs, procs = ours("negotium")
truns, tprocs = ours("negotium-trace")
n_ours = runs[0]["negotiations"]
print(f"tournament: 4 strategies x 3 W1 scenarios x 5 repetitions, self-play, rotation "
      f"(medians of {len(runs)} runs each)")
print(f"  {'':34}{'negotiations':>12}{'wall s':>10}{'neg/s':>12}")
rows = []
for name, s in sorted(peer.items()):
    nps = s["negotiations_per_s"]["median"]
    rows.append((name, nps))
    print(f"  {'NegMAS 0.16 ' + name:34}{s['n_negotiations']:>12}{s['wall_s']['median']:>10.3f}{nps:>12.1f}"
          f"   agreements {s['agreements']}, peak {s['max_rss_kb']['median'] / 1024:.0f} MiB")
ours_rows = [
    ("negotium (no traces, default)", runs, procs),
    ("negotium (trace = true)", truns, tprocs),
]
for label, rs, ps in ours_rows:
    wall = med([r["wall_s"] for r in rs])
    nps = med([r["negotiations_per_s"] for r in rs])
    print(f"  {label:34}{rs[0]['negotiations']:>12}{wall:>10.4f}{nps:>12.0f}"
          f"   {rs[0]['threads']} threads; whole process {med(ps):.4f} s")
print("speed ratio (negotium neg/s over NegMAS neg/s; wall time inside each process: load, run, write results)")
for label, rs, ps in ours_rows:
    nps = med([r["negotiations_per_s"] for r in rs])
    pnps = n_ours / med(ps)
    for name, peer_nps in rows:
        print(f"  {label:34} vs NegMAS {name:9} {nps / peer_nps:8.0f}x   (whole process: {pnps / peer_nps:.0f}x)")

# Rankings. NegMAS ranks by mean advantage (u - rv) / (max u - rv); on these
# domains max u = 1 and rv = 0.1 for every profile, so its score is our mean
# advantage / 0.9 and the same order as our mean utility.
names = {"BoulwareTBNegotiator": "boulware", "ConcederTBNegotiator": "conceder",
         "LinearTBNegotiator": "linear", "NaiveTitForTatNegotiator": "tit-for-tat (NaiveTitForTat)"}
first = sorted(peer)[0]
scores = peer[first]["final_scores_run1"] or []
summary = runs[0]["summary"]
print(f"rankings (NegMAS {first}, run 1: score = mean normalised advantage; "
      "negotium: by mean utility, with mean advantage / 0.9 on NegMAS' scale)")
print(f"  {'#':<3}{'NegMAS':<32}{'score':>8}    {'negotium':<14}{'utility':>9}{'adv/0.9':>9}{'agree':>7}{'n':>5}")
for i in range(max(len(scores), len(summary))):
    p = scores[i] if i < len(scores) else None
    o = summary[i] if i < len(summary) else None
    left = f"{names.get(p['strategy'], p['strategy']):<32}{p['score']:>8.4f}" if p else " " * 40
    right = (f"{o['strategy']:<14}{o['mean_utility']:>9.4f}{o['mean_advantage'] / 0.9:>9.4f}"
             f"{o['agreement_rate']:>7.3f}{o['n']:>5}") if o else ""
    print(f"  {i + 1:<3}{left}    {right}")
agreed = sum(1 for l in (out / "negotium.r1" / "results.jsonl").read_text().splitlines()
             if json.loads(l)["agreement"] is not None)
print(f"  agreements: NegMAS {peer[first]['agreements'][0]} of {peer[first]['n_negotiations']}, "
      f"negotium {agreed} of {n_ours}")
same = [names.get(p["strategy"], "").split(" ")[0] for p in scores] == [o["strategy"] for o in summary]
print(f"  same order: {'yes' if same else 'no'}")
check = out / "peer-no-tft.json"
if check.exists():
    p = json.loads(check.read_text().strip().splitlines()[-1])
    o = json.loads((out / "negotium-no-tft.json").read_text())
    mine = {s["strategy"]: s["mean_advantage"] / 0.9 for s in o["summary"]}
    print(f"without tit-for-tat (3 strategies, 1 repetition: NegMAS {p['n_negotiations']}, "
          f"negotium {o['negotiations']} negotiations)")
    worst = 0.0
    for s in p["final_scores"]:
        ours_score = mine[names[s["strategy"]]]
        worst = max(worst, abs(ours_score - s["score"]))
        print(f"  {names[s['strategy']]:<12} NegMAS {s['score']:.12f}   negotium {ours_score:.12f}")
    print(f"  largest difference {worst:.1e}")
print("  note: negotium's tit-for-tat is not NegMAS' NaiveTitForTatNegotiator (see the top of this script);")
print("  the other three are the same time-dependent strategies on the same domains.")
PY
