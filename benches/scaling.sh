#!/usr/bin/env bash
# Time per negotiation and peak memory as the outcome space grows: W's
# preferences (DESIGN.md) on K issues of 10 values, Boulware–Conceder, 100
# rounds, one thread, for 10^3 … 10^50 outcomes; NegMAS beside it where it
# can run at all (it enumerates every outcome: at its 10^5 footprint, about
# 4.7 kB an outcome, 10^7 would need some 47 GB).
# Writes OUTDIR/scaling.md (the README table) and OUTDIR/scaling.svg.
#
#   bash benches/scaling.sh [OUTDIR]
#
# PEER=skip leaves NegMAS out (its 10^5 row alone takes about five minutes).
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benches/peer.sh
. "$HERE/benches/peer.sh"
PEER_DIR=${PEER_DIR:-$HERE/../shared/peers/negmas}
OUT=${1:-/tmp/negotium-scaling}
mkdir -p "$OUT"
cargo build --release --quiet --manifest-path "$HERE/Cargo.toml"
BIN=$HERE/target/release/negotium
# K issues, negotium negotiations, NegMAS negotiations (0: not run).
ROWS="3 4000 100
5 2000 20
7 200 0
10 10 0
20 100 0
50 100 0"
if [ "${PEER:-run}" != skip ]; then ensure_peer; fi
while read -r k n peer_n; do
  "$BIN" bench --workload "${k}x10" --n "$n" --threads 1 --json > "$OUT/negotium-$k.json"
  if [ "${PEER:-run}" != skip ] && [ "$peer_n" -gt 0 ]; then
    /usr/bin/time -v -o "$OUT/peer-$k.time" "$PEER_PY" "$PEER_DIR/bench_sao.py" --issues "$k" --values 10 \
      --n "$peer_n" --steps 100 --pair boulware-conceder > "$OUT/peer-$k.json"
  fi
done <<< "$ROWS"
python3 - "$OUT" <<'PY'
import json, re, sys
from pathlib import Path
out = Path(sys.argv[1])
rows = []
for f in sorted(out.glob("negotium-*.json"), key=lambda p: int(p.stem.split("-")[1])):
    k = int(f.stem.split("-")[1])
    d = json.loads(f.read_text())
    ours_ms = 1000.0 / d["negotiations_per_s"]
    peer = out / f"peer-{k}.json"
    peer_ms = peer_mib = None
    if peer.exists():
        p = json.loads(peer.read_text())
        peer_ms = 1000.0 / p["negotiations_per_s"]
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", (out / f"peer-{k}.time").read_text())
        peer_mib = int(m.group(1)) / 1024 if m else None
    rows.append((k, d, ours_ms, peer_ms, peer_mib))
lines = ["| outcomes | negotium: ms / negotiation, peak MiB | bids | agreement, mean u_A, u_B | NegMAS 0.16: ms, peak MiB | ratio |",
         "|---|---|---|---|---|---|"]
for k, d, ms, pms, pmib in rows:
    gap = d.get("bids_gap")
    bids = "exact" if d["exact"] else f"search, within {gap:.0e}" if gap is not None else "search (no bound)"
    u = ", ".join(f"{x:.4f}" for x in d["mean_utilities"])
    peer = f"{pms:,.1f} ms, {pmib:,.0f} MiB" if pms else "cannot enumerate" if k >= 7 else "not run"
    ratio = f"{pms / ms:,.0f}×" if pms else ""
    lines.append(f"| 10^{k} | {ms:,.3f} ms, {d['peak_rss_mib']:.0f} MiB | {bids} | {d['agreement_rate']:.3f}, {u} | {peer} | {ratio} |")
(out / "scaling.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
# A log-log chart, drawn by hand (no plotting library needed).
import math
W, H, L, B, T, R = 640, 360, 70, 50, 20, 20
xs = [k for k, *_ in rows]
ys = [v for _, _, ms, pms, _ in rows for v in (ms, pms) if v]
y0, y1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
def px(k): return L + (k - 0) / 50 * (W - L - R)
def py(v): return T + (y1 - math.log10(v)) / (y1 - y0) * (H - T - B)
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
       f'<rect width="{W}" height="{H}" fill="white"/>']
for e in range(y0, y1 + 1):
    y = py(10 ** e)
    svg.append(f'<line x1="{L}" y1="{y:.1f}" x2="{W - R}" y2="{y:.1f}" stroke="#ddd"/>')
    svg.append(f'<text x="{L - 6}" y="{y + 4:.1f}" text-anchor="end">{10.0 ** e:g} ms</text>')
for k in (0, 10, 20, 30, 40, 50):
    x = px(k)
    svg.append(f'<line x1="{x:.1f}" y1="{T}" x2="{x:.1f}" y2="{H - B}" stroke="#eee"/>')
    svg.append(f'<text x="{x:.1f}" y="{H - B + 16}" text-anchor="middle">10^{k}</text>')
svg.append(f'<text x="{(L + W - R) / 2}" y="{H - 10}" text-anchor="middle">outcomes (issues of 10 values)</text>')
def series(points, colour, label, dy, hollow=()):
    pts = " ".join(f"{px(k):.1f},{py(v):.1f}" for k, v in points)
    svg.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>')
    for k, v in points:
        fill = "white" if k in hollow else colour
        svg.append(f'<circle cx="{px(k):.1f}" cy="{py(v):.1f}" r="4" fill="{fill}" stroke="{colour}" stroke-width="2"/>')
    svg.append(f'<text x="{W - R - 4}" y="{T + dy}" text-anchor="end" fill="{colour}">{label}</text>')
searched = {k for k, d, *_ in rows if not d["exact"]}
series([(k, ms) for k, _, ms, _, _ in rows], "#1f77b4",
       "negotium, time per negotiation (1 thread; hollow: search, best found)", 14, searched)
peer_pts = [(k, pms) for k, _, _, pms, _ in rows if pms]
if peer_pts:
    series(peer_pts, "#d62728", "NegMAS 0.16 (enumerates; 10^7 and up do not fit in memory)", 30)
svg.append("</svg>")
(out / "scaling.svg").write_text("\n".join(svg) + "\n")
PY
