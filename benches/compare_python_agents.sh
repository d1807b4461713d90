#!/usr/bin/env bash
# Python agents on negotium against the same agents in NegMAS's own
# tournament, in one go: the peer's 4-strategy tournament
# (../shared/peers/negmas/bench_tournament.py: cartesian_tournament on the
# W1-like domains of seeds 1..3, every ordered pair with self-play, both
# ufun assignments) with its four time-based negotiators swapped for four
# ANAC agents of negmas-genius-agents, and the same tournament in
# `negotium tournament`, where the agents are Python strategies seated by
# the agent host. Prints negotiations/s of each and the ratio.
#
#   bash benches/compare_python_agents.sh [OUTDIR]
#
# REPS (default 1) repetitions of the tournament; AGENTS (default
# "HardHeaded CUHKAgent Gahboninho TheFawkes") the classes. Needs a Python
# with the package, NegMAS and negmas-genius-agents: PY, else a venv made in
# /tmp/negotium-agents-venv on first use (PyPI).
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
PEER_DIR=${PEER_DIR:-$HERE/../shared/peers/negmas}
OUT=${1:-/tmp/negotium-compare-python-agents}
REPS=${REPS:-1}
AGENTS=${AGENTS:-HardHeaded CUHKAgent Gahboninho TheFawkes}
mkdir -p "$OUT"
if [ -z "${PY:-}" ]; then
  VENV=/tmp/negotium-agents-venv
  if ! "$VENV/bin/python" -c "import negotium.host, negmas_genius_agents" 2>/dev/null; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "$HERE/python[negmas]" negmas-genius-agents==0.3.0
  fi
  PY=$VENV/bin/python
fi

# The peer's script with its competitors replaced (shared/ is not touched).
AGENTS="$AGENTS" "$PY" - "$PEER_DIR/bench_tournament.py" "$OUT/bench_tournament_agents.py" <<'PY'
import os, sys
src, dst = sys.argv[1], sys.argv[2]
agents = os.environ["AGENTS"].split()
s = open(src).read()
old = """    competitors = [
        BoulwareTBNegotiator,
        ConcederTBNegotiator,
        LinearTBNegotiator,
        NaiveTitForTatNegotiator,
    ]"""
assert old in s, "the peer's competitor list changed"
s = s.replace(old, "    import negmas_genius_agents as g\n    competitors = [%s]" % ", ".join(f"g.{a}" for a in agents))
s = s.replace("sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))",
              "sys.path.insert(0, %r)" % os.path.dirname(os.path.abspath(src)))
open(dst, "w").write(s)
PY
for nj in -1 2; do
  "$PY" "$OUT/bench_tournament_agents.py" --reps "$REPS" --njobs "$nj" > "$OUT/peer-nj$nj.json" 2> "$OUT/peer-nj$nj.log" || {
    echo "peer (njobs $nj) failed; the end of $OUT/peer-nj$nj.log:" >&2
    tail -n 20 "$OUT/peer-nj$nj.log" >&2
    exit 1
  }
done

cargo build --release --quiet --manifest-path "$HERE/Cargo.toml"
BIN=$HERE/target/release/negotium
{
  echo 'name = "python-agents-w1"'
  printf 'strategies = ['
  sep=""
  for a in $AGENTS; do
    printf '%s{ python = "negmas_genius_agents:%s", label = "%s" }' "$sep" "$a" "$a"
    sep=", "
  done
  echo ']'
  echo 'workload = { name = "w1", seeds = [1, 2, 3] }'
  echo "repetitions = $REPS"
  echo 'self_play = true'
  echo 'rotate_order = true'
  echo 'seed = 0'
} > "$OUT/negotium.toml"
rm -rf "$OUT/negotium"
NEGOTIUM_PYTHON=$PY "$BIN" tournament "$OUT/negotium.toml" --out "$OUT/negotium" --json > "$OUT/negotium.json"

"$PY" - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
peer = {nj: json.loads((out / f"peer-nj{nj}.json").read_text().strip().splitlines()[-1]) for nj in (-1, 2)}
ours = json.loads((out / "negotium.json").read_text())
n, wall = ours["negotiations"], ours["wall_s"]
print(f"tournament of {peer[-1]['n_competitors']} ANAC agents (negmas-genius-agents) x 3 W1 scenarios, "
      f"self-play, rotation: {n} negotiations")
for nj, p in peer.items():
    print(f"  NegMAS {p['negmas_version']} cartesian_tournament njobs={nj:>2}: {p['wall_s']:8.2f} s  "
          f"{p['negotiations_per_s']:7.2f} neg/s")
print(f"  negotium tournament (agent host):        {wall:8.2f} s  {n / wall:7.2f} neg/s  "
      f"({n / wall / peer[-1]['negotiations_per_s']:.2f}x NegMAS serial, "
      f"{n / wall / peer[2]['negotiations_per_s']:.2f}x njobs=2)")
PY
