#!/usr/bin/env python3
"""Native agents beside their NegMAS ports: behaviour and speed, in one run.

    python bench/native_agents.py [--agents hardheaded,agentk] [--repetitions 2] [--out DIR]

For each native agent of negotium (``negotium agents``) that has a port in
negmas-genius-agents (or NegMAS itself, for MiCRO), one ``negotium
tournament`` plays the native agent, the hosted port, ``boulware`` and
``conceder`` against each other on five ANAC domains (every pair, each side
opening once, self-play on). From its records, per agent and opponent
(boulware, conceder, itself: native against native, port against port):
agreement rate, mean own utility (after discount, as the tournament table)
and mean rounds, native beside port. Then speed: a tournament of the native
agents alone and one of their ports alone, the same pairings, wall time
beside wall time.

``$NEGOTIUM_BIN`` is the binary (default ``../target/release/negotium``);
the ports come from the Python that ``$NEGOTIUM_PYTHON`` names (with
negmas and negmas-genius-agents installed). Prints Markdown tables (README,
"Native agents") and writes the records under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
GENIUS = REPO.parent / "shared" / "data" / "genius"

# Native name -> the port's import path.
PORTS = {
    "agentk": "negmas_genius_agents:AgentK",
    "hardheaded": "negmas_genius_agents:HardHeaded",
    "iamhaggler2011": "negmas_genius_agents:IAMhaggler2011",
    "nicetitfortat": "negmas_genius_agents:NiceTitForTat",
    "ponpokoagent": "negmas_genius_agents:PonPokoAgent",
    "agreeableagent2018": "negmas_genius_agents:AgreeableAgent2018",
    "micro": "negmas.sao.negotiators:MiCRONegotiator",
}

DOMAINS = [
    "y2010/ItexvsCypress",
    "y2010/EnglandZimbabwe",
    "y2011/Amsterdam",
    "y2011/Grocery",
    "y2012/AirportSiteSelectionA",
]


def negotium_bin() -> str:
    return str(Path(os.environ.get("NEGOTIUM_BIN", REPO / "target" / "release" / "negotium")).resolve())


def write_tournament(path: Path, name: str, strategies: list, repetitions: int) -> None:
    def toml_value(s) -> str:
        if isinstance(s, str):
            return json.dumps(s)
        return "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in s.items()) + " }"

    scenarios = ", ".join(json.dumps(str(GENIUS / d)) for d in DOMAINS)
    path.write_text(
        f'name = "{name}"\n'
        f"strategies = [{', '.join(toml_value(s) for s in strategies)}]\n"
        f"scenarios = [{scenarios}]\n"
        f"repetitions = {repetitions}\n"
        "self_play = true\n"
    )


def run_tournament(path: Path, out: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [negotium_bin(), "tournament", str(path), "--out", str(out)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line.strip()]


def behaviour(agent: str, port_label: str, recs: list[dict]) -> dict:
    """(side, opponent) -> [agreements, utility sum, rounds sum, n]."""
    cells: dict = defaultdict(lambda: [0, 0.0, 0.0, 0])
    for r in recs:
        s = r["strategies"]
        for p, me in enumerate(s):
            side = "native" if me == agent else "port" if me == port_label else None
            if side is None:
                continue
            other = s[1 - p]
            if other == me:
                opp = "itself"
            elif other in ("boulware", "conceder"):
                opp = other
            else:
                continue
            c = cells[(side, opp)]
            c[0] += r["ended_by"] == "agreement"
            c[1] += r["utilities"][p]
            c[2] += r["rounds"]
            c[3] += 1
    return cells


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", default=",".join(PORTS))
    ap.add_argument("--repetitions", type=int, default=2)
    ap.add_argument("--out", default="/tmp/native-agents")
    args = ap.parse_args()
    agents = [a for a in args.agents.split(",") if a]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    print("| agent | opponent | agreement (native / port) | own utility (native / port) | rounds (native / port) |")
    print("|---|---|---|---|---|")
    for agent in agents:
        port = {"python": PORTS[agent]}
        label = f"python({PORTS[agent]})"
        t = out / f"{agent}.toml"
        write_tournament(t, agent, [agent, port, "boulware", "conceder"], args.repetitions)
        run_tournament(t, out / agent)
        cells = behaviour(agent, label, records(out / agent))
        for opp in ("boulware", "conceder", "itself"):
            n, p = cells[("native", opp)], cells[("port", opp)]

            def fmt(c, k, digits):
                return f"{c[k] / c[3]:.{digits}f}" if c[3] else "-"

            print(
                f"| {agent} | {opp} | {fmt(n, 0, 2)} / {fmt(p, 0, 2)} | {fmt(n, 1, 3)} / {fmt(p, 1, 3)} "
                f"| {fmt(n, 2, 1)} / {fmt(p, 2, 1)} |"
            )
        sys.stdout.flush()

    # Speed: the same round robin, natives alone against ports alone.
    native = out / "speed-native.toml"
    write_tournament(native, "native", agents, args.repetitions)
    ported = out / "speed-port.toml"
    write_tournament(ported, "port", [{"python": PORTS[a]} for a in agents], args.repetitions)
    tn = run_tournament(native, out / "speed-native")
    tp = run_tournament(ported, out / "speed-port")
    n = len(records(out / "speed-native"))
    print()
    print("| round robin | negotiations | wall time | neg/s |")
    print("|---|---|---|---|")
    print(f"| native agents | {n} | {tn:.3f} s | {n / tn:,.0f} |")
    m = len(records(out / "speed-port"))
    print(f"| NegMAS ports, hosted | {m} | {tp:.1f} s | {m / tp:,.1f} |")
    print(f"\nnative / hosted: {tp / tn * n / max(m, 1):,.0f}x faster per negotiation")
    return 0


if __name__ == "__main__":
    sys.exit(main())
