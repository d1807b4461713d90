#!/usr/bin/env python3
"""Turns per second of hosted NegMAS agents, against the same pair inside NegMAS's SAOMechanism.

    python bench/host_speed.py [--domain DIR] [--agents A,B] [--sessions 12] [--concurrent 1,8] [--workers N]

It starts ``negotium serve`` (``$NEGOTIUM_BIN``, default
``../target/debug/negotium``) on a free 127.0.0.1 port and one
``negotium-agents serve`` host, then, in the same run:

1. **SAOMechanism**: the pair negotiates ``--sessions`` times in one process,
   NegMAS calling both negotiators directly (no network, no isolation): the
   ceiling for these agents on this machine.
2. **Hosted**: the same pair on the same utility functions (converted by
   negotium.negmas_adapter), both seats in the host, each negotiator in its
   own forked process behind a deadline, every turn a gRPC round trip to the
   server; ``--sessions`` sessions run with 1 and with 8 (``--concurrent``)
   in flight at once.
3. **Hosted, trivial agent**: a negotium Agent that does almost nothing per
   turn, hosted the same way, against the same agent played in-process by
   ``negotium.play`` over one stream: the host's own cost per turn (process
   hop and deadline bookkeeping), without NegMAS's.

A turn is one party's action (an offer, an accept or an end), counted from
the records' traces and from SAOMechanism's history. Times exclude starting
the server and the host's workers and the workers' first import of the
agents' modules (paid once per host), but include creating each session,
forking its seats' processes and the negotiators' setup.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PYTHON = HERE.parent
REPO = PYTHON.parent
sys.path.insert(0, str(PYTHON / "tests"))  # the trivial agent lives with the test agents
os.environ["PYTHONPATH"] = os.pathsep.join([str(PYTHON / "tests"), os.environ.get("PYTHONPATH", "")]).strip(os.pathsep)


def negotium_bin() -> str:
    return str(Path(os.environ.get("NEGOTIUM_BIN", REPO / "target" / "debug" / "negotium")).resolve())


def start_server() -> tuple[subprocess.Popen, str]:
    p = subprocess.Popen(
        [negotium_bin(), "serve", "--listen", "127.0.0.1:0", "--max-sessions-per-client", "100000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert p.stdout is not None
    for line in p.stdout:
        m = re.search(r"listening on (\S+)", line)
        if m:
            return p, m.group(1)
    raise SystemExit("negotium serve did not start")


def scenario(domain: Path, rounds: int) -> str:
    toml = subprocess.run([negotium_bin(), "import", str(domain)], capture_output=True, text=True, check=True).stdout
    for n in re.findall(r'^\[\[parties\]\]\nname = "([^"]*)"', toml, flags=re.M):
        head = f'[[parties]]\nname = "{n}"\n'
        toml = toml.replace(head, head + "external = true\n", 1)
    return re.sub(r"(\[protocol\]\n)(?:rounds = \d+\n)?", rf"\g<1>rounds = {rounds}\n", toml, count=1)


class Host:
    """A long-lived `negotium-agents serve`, fed seats and read for events."""

    def __init__(self, address: str, workers: int) -> None:
        env = dict(os.environ)
        self.p = subprocess.Popen(
            [sys.executable, "-m", "negotium.host", "serve", "--server", address, "--workers", str(workers)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.ended: dict[str, int] = {}
        self.cv = threading.Condition()
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(120):
            raise SystemExit("the host did not start")

    def _read(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            ev = json.loads(line)
            if ev["event"] == "ready":
                self.ready.set()
            elif ev["event"] == "ended":
                with self.cv:
                    self.ended[ev["session"]] = self.ended.get(ev["session"], 0) + 1
                    self.cv.notify_all()
            elif ev["event"] == "error":
                print("host error:", ev, file=sys.stderr)

    def seat(self, lines: list[dict]) -> None:
        assert self.p.stdin is not None
        self.p.stdin.write("".join(json.dumps(x) + "\n" for x in lines))
        self.p.stdin.flush()

    def wait(self, sessions: dict[str, int], timeout: float = 600) -> None:
        end = time.monotonic() + timeout
        with self.cv:
            while any(self.ended.get(s, 0) < n for s, n in sessions.items()):
                if not self.cv.wait(max(0.0, end - time.monotonic())):
                    raise SystemExit("sessions did not end in time")

    def close(self) -> None:
        assert self.p.stdin is not None
        self.p.stdin.close()
        self.p.wait(60)


def hosted(client, host: Host, toml: str, agents: list[str], n: int, concurrent: int) -> tuple[float, int, int]:
    """Plays n sessions, `concurrent` at a time; returns (seconds, turns, violations)."""
    turns = violations = 0
    t0 = time.perf_counter()
    for i in range(0, n, concurrent):
        batch = [client.create_session(toml, seed=k, join_timeout=60) for k in range(i, min(n, i + concurrent))]
        lines = []
        for cs in batch:
            for party, agent in zip(cs.tokens, agents):
                lines.append({"session": cs.session_id, "party": party, "token": cs.tokens[party], "agent": agent, "deadline": 30})
        host.seat(lines)
        host.wait({cs.session_id: len(cs.tokens) for cs in batch})
        for cs in batch:
            r = client.result(cs.session_id)
            turns += len(r.record["trace"])
            violations += r.violation is not None
    return time.perf_counter() - t0, turns, violations


def in_mechanism(sessions, agents: list[str], n: int, rounds: int) -> tuple[float, int]:
    from negmas.sao import SAOMechanism

    from negotium._loading import load_class
    from negotium.negmas_adapter import make_outcome_space, make_ufun

    classes = [load_class(a) for a in agents]
    os_ = make_outcome_space(sessions[0].domain)
    ufuns = [make_ufun(s.ufun, os_) for s in sessions]
    turns = 0
    t0 = time.perf_counter()
    for _ in range(n):
        m = SAOMechanism(outcome_space=os_, n_steps=rounds)
        for s, cls, u in zip(sessions, classes, ufuns):
            m.add(cls(name=s.party), preferences=u)
        m.run()
        # Every negotiator call is a turn: offers from the history, plus the final accept.
        turns += sum(len(h.new_offers) for h in m.history) + (1 if m.agreement is not None else 0)
    return time.perf_counter() - t0, turns


def host_internals(seats: int = 16, calls: int = 2000) -> tuple[float, float]:
    """(ms to fork a seat process and make its agent, ms per host <-> seat round trip), no server involved."""
    import asyncio

    from negotium._pb import pb
    from negotium._zygote import HEADER
    from negotium.host import SeatRequest, Worker

    settings = pb.ServerMessage(
        settings=pb.SessionSettings(
            session_id="s", party="p", party_index=1, parties=["o", "p"], protocol="saop", deadline_rounds=100,
            domain=pb.Domain(name="d", issues=[pb.Issue(name="x", discrete=pb.DiscreteIssue(values=["a", "b"]))]),
            profile=pb.Profile(linear_additive=pb.LinearAdditive(weights=[1.0], values=[pb.ValueFunction(table=pb.Table(utilities=[0.0, 1.0]))])),
        )
    )
    turn = pb.ServerMessage(your_turn=pb.YourTurn(session_id="s", party="p", turn=1, round=3, time=0.04))

    def frame(m) -> bytes:
        b = m.SerializeToString()
        return HEADER.pack(len(b), ord("m")) + b

    async def run() -> tuple[float, float]:
        w = Worker(0, 60.0, ["negmas"])
        await w.start()
        req = SeatRequest("s", "p", "t", "hosted_agents:Greedy")
        _, first = await w.spawn(req)  # the first spawn imports the module
        first.close()
        t0 = time.perf_counter()
        conns = []
        for _ in range(seats):
            pid, sock = await w.spawn(req)
            r, wr = await asyncio.open_unix_connection(sock=sock)
            await r.readexactly(HEADER.size + len(b"Greedy"))  # 'r' + the agent's name
            conns.append((pid, r, wr))
        fork_ms = 1000 * (time.perf_counter() - t0) / seats
        pid, r, wr = conns[0]
        wr.write(frame(settings))
        await r.readexactly(HEADER.size)  # 's'
        t0 = time.perf_counter()
        for _ in range(calls):
            wr.write(frame(turn))
            n, _ = HEADER.unpack(await r.readexactly(HEADER.size))
            await r.readexactly(n)
        rt_ms = 1000 * (time.perf_counter() - t0) / calls
        for pid, _, wr in conns:
            wr.close()
        await w.stop()
        return fork_ms, rt_ms

    return asyncio.run(run())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--domain", type=Path, default=REPO.parent / "shared" / "data" / "genius" / "y2010" / "ItexvsCypress")
    ap.add_argument("--agents", default="negmas_genius_agents:HardHeaded,negmas.sao:BoulwareTBNegotiator")
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--sessions", type=int, default=16)
    ap.add_argument("--concurrent", default="1,8")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    agents = args.agents.split(",")

    from fidelity import settings_of

    from negotium import Client, play
    from hosted_agents import Greedy

    server, address = start_server()
    try:
        client = Client(address)
        toml = scenario(args.domain, args.rounds)

        class S:
            pass

        S.address = address
        sessions = settings_of(S, toml)
        host = Host(address, args.workers)
        # Warm-up: each worker imports an agent's module the first time a seat names it
        # (once per host, after a probe import); that is not a per-turn cost.
        hosted(client, host, toml, agents, max(2, args.workers), max(2, args.workers))
        rows = []
        sec, turns = in_mechanism(sessions, agents, args.sessions, args.rounds)
        rows.append(("SAOMechanism, in process", 1, sec, turns, 0))
        for c in (int(x) for x in args.concurrent.split(",")):
            sec, turns, v = hosted(client, host, toml, agents, args.sessions, c)
            rows.append((f"hosted NegMAS ({' vs '.join(a.split(':')[-1] for a in agents)})", c, sec, turns, v))
        # The host's own cost: a trivial agent (Greedy) hosted vs played in-process over one stream.
        trivial = ["hosted_agents:Greedy", "hosted_agents:Greedy"]
        sec, turns, v = hosted(client, host, toml, trivial, args.sessions, 1)
        rows.append(("hosted trivial agent (Greedy)", 1, sec, turns, v))
        t0 = time.perf_counter()
        turns = 0
        for k in range(args.sessions):
            cs = client.create_session(toml, seed=k, join_timeout=60)
            res = play(Greedy, cs.seats(), address)
            turns += len(next(iter(res.values())).result.record["trace"])
        rows.append(("in-process play() trivial agent", 1, time.perf_counter() - t0, turns, 0))
        host.close()
    finally:
        server.terminate()
    fork_ms, rt_ms = host_internals()
    print(f"host internals: {fork_ms:.1f} ms to fork a seat process and make its agent; "
          f"{rt_ms:.3f} ms per turn round trip host <-> seat process (a trivial agent, no server)")
    print(f"domain {args.domain.name}, {args.rounds} rounds, {args.sessions} sessions per row, {args.workers} workers, {os.cpu_count()} cores")
    print(f"{'':44} {'in flight':>9} {'turns':>7} {'seconds':>8} {'turns/s':>8} {'ms/turn':>8} {'violations':>10}")
    for name, c, sec, turns, v in rows:
        print(f"{name:44} {c:>9} {turns:>7} {sec:>8.2f} {turns / sec:>8.0f} {1000 * sec / turns:>8.2f} {v:>10}")


if __name__ == "__main__":
    main()
