#!/usr/bin/env python3
"""Breadth: every agent of a NegMAS agent package, hosted, against negotium's built-in ``boulware``.

    python bench/breadth.py [--package negmas_genius_agents|anl_agents] [--first N] [--concurrent 3]
                            [--rounds 100] [--deadline 10] [--session-limit 120] [--workers 2]
                            [--out bench/breadth_results.json] [--md bench/BREADTH.md]

It starts one ``negotium serve --listen 127.0.0.1:0`` (``$NEGOTIUM_BIN``,
default ``../target/release/negotium``) and one ``python -m negotium.host
serve --workers N`` (this interpreter), then for every public
``SAONegotiator`` subclass the package exports (``--first N``: the first N
alphabetically) plays four sessions: two domains (y2010/ItexvsCypress and
y2012/AirportSiteSelectionB, which has a discount and a reservation value) x
who opens (boulware, or the agent). In each, the scenario's first profile is
played locally by ``boulware`` and the second is external, seated by the host
with the agent (``deadline`` seconds per call, the server's turn timeout one
second above it so that the host's own deadline is the one that cuts).
``--concurrent`` sessions are in flight at once.

Every session's result is fetched (GetResult, polled) under a hard limit
(``--session-limit`` seconds from its creation); a session without a result
by then is a STALL (it is then cancelled). A session is *clean* when it ended
by agreement, deadline or end-negotiation with no violation; *failed in the
agent* when it ended with a violation recorded on the agent's party (the
reason is kept). Per agent: clean when all its sessions are clean, failed
when any ended with a violation on its party, stall when any stalled.

For ``anl_agents`` the classes are found by walking the package's
submodules; a submodule that cannot be imported (torch, tensorflow, ...) is
listed with the error, and its agents are not played.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import json
import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
PYTHON = HERE.parent
REPO = PYTHON.parent
DATA = Path(os.environ.get("NEGOTIUM_GENIUS", REPO.parent / "shared" / "data" / "genius"))
if not DATA.exists():
    DATA = Path("/work/shared/data/genius")
DOMAINS = ["y2010/ItexvsCypress", "y2012/AirportSiteSelectionB"]
CLEAN_ENDINGS = {"agreement", "deadline", "end-negotiation"}


def negotium_bin() -> str:
    return str(Path(os.environ.get("NEGOTIUM_BIN", REPO / "target" / "release" / "negotium")).resolve())


# --- agents ------------------------------------------------------------------


def public_negotiators(mod) -> dict[str, type]:
    from negmas.sao import SAONegotiator

    out = {}
    for name in getattr(mod, "__all__", None) or dir(mod):
        if name.startswith("_"):
            continue
        obj = getattr(mod, name, None)
        if inspect.isclass(obj) and issubclass(obj, SAONegotiator) and not inspect.isabstract(obj):
            out[name] = obj
    return out


def discover(package: str) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """({display name: host spec}, {module: import error}, {class: why it is not played})."""
    if package == "anl_agents":
        import anl_shim  # bench/anl_shim.py: imports each agent module on its own

        return anl_shim.discover()
    top = importlib.import_module(package)
    # The top-level exports: for negmas_genius_agents, every ported agent.
    return {n: f"{package}:{n}" for n in sorted(public_negotiators(top))}, {}, {}


def anl_registered() -> set[str]:
    """The agents anl_agents registers (imported by anl_agents/agents.py), as "year.team.module.Class"."""
    spec = importlib.util.find_spec("anl_agents")
    text = (Path(list(spec.submodule_search_locations)[0]) / "agents.py").read_text()
    return {f"{m}.{c}" for m, c in re.findall(r"^from anl_agents\.(\S+) import (\w+)$", text, flags=re.M)}


CONTROLS = {  # negotium's own misbehaving test agents (python/tests/hosted_agents.py)
    "control:Sleeper": "hosted_agents:Sleeper",
    "control:Raiser": "hosted_agents:Raiser",
    "control:Outsider": "hosted_agents:Outsider",
    "control:Exiter": "hosted_agents:Exiter",
}


# --- server, scenarios, host -------------------------------------------------


def start_server(turn_timeout: float) -> tuple[subprocess.Popen, str]:
    p = subprocess.Popen(
        [negotium_bin(), "serve", "--listen", "127.0.0.1:0", "--max-sessions-per-client", "100000",
         "--turn-timeout", str(turn_timeout), "--join-timeout", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert p.stdout is not None
    for line in p.stdout:
        m = re.search(r"listening on (\S+)", line)
        if m:
            threading.Thread(target=lambda: [None for _ in p.stdout], daemon=True).start()
            return p, m.group(1)
    raise SystemExit("negotium serve did not start")


def scenario(domain: Path, rounds: int) -> tuple[str, str, str]:
    """(TOML, local party, external party): the first profile plays boulware, the second is external."""
    toml = subprocess.run([negotium_bin(), "import", str(domain)], capture_output=True, text=True, check=True).stdout
    names = re.findall(r'^\[\[parties\]\]\nname = "([^"]*)"', toml, flags=re.M)
    assert len(names) == 2, names
    a, b = names
    toml = toml.replace(f'[[parties]]\nname = "{a}"\n', f'[[parties]]\nname = "{a}"\nstrategy = "boulware"\n', 1)
    toml = toml.replace(f'[[parties]]\nname = "{b}"\n', f'[[parties]]\nname = "{b}"\nexternal = true\n', 1)
    toml = re.sub(r"(\[protocol\]\n)(?:rounds = \d+\n)?", rf"\g<1>rounds = {rounds}\n", toml, count=1)
    return toml, a, b


class Host:
    """One long-lived `python -m negotium.host serve`, fed seats, its events kept per session."""

    def __init__(self, address: str, workers: int) -> None:
        self.p = subprocess.Popen(
            [sys.executable, "-m", "negotium.host", "serve", "--server", address, "--workers", str(workers)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            cwd=HERE,  # not python/: `-m` would import the uninstalled package there (no stubs)
            env={**os.environ, "PYTHONPATH": os.pathsep.join(
                [str(HERE), str(PYTHON / "tests")] + [x for x in [os.environ.get("PYTHONPATH")] if x])},
        )
        self.events: dict[str, list[dict]] = {}
        self.lock = threading.Lock()
        self.cv = threading.Condition(self.lock)
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        for _ in range(360):
            if self.ready.wait(0.5):
                break
            if self.p.poll() is not None:
                raise SystemExit(f"the host exited with status {self.p.returncode}")
        else:
            raise SystemExit("the host did not start")

    def _read(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev.get("event") == "ready":
                self.ready.set()
            elif "session" in ev:
                with self.cv:
                    self.events.setdefault(ev["session"], []).append(ev)
                    self.cv.notify_all()

    def wait_seat(self, sid: str, deadline: float) -> None:
        """Until the host reported the seat ended (or an error for it), or the deadline."""
        with self.cv:
            while not any(e.get("event") in ("ended", "error") for e in self.events.get(sid, [])):
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self.cv.wait(left)

    def seat(self, line: dict) -> None:
        assert self.p.stdin is not None
        with self.cv:
            self.p.stdin.write(json.dumps(line) + "\n")
            self.p.stdin.flush()

    def close(self) -> None:
        assert self.p.stdin is not None
        try:
            self.p.stdin.close()
            self.p.wait(60)
        except Exception:  # noqa: BLE001
            self.p.kill()


# --- one session -------------------------------------------------------------


def play_one(client, host: Host, job: dict, args) -> dict:
    from negotium.errors import NegotiumError

    t0 = time.monotonic()
    out = dict(agent=job["agent"], domain=job["domain"], opens=job["opens"])
    try:
        cs = client.create_session(job["toml"], seed=job["seed"], join_timeout=60,
                                   first_party=job["first"])
    except NegotiumError as e:
        out.update(status="error", reason=f"create: {e}"[:200])
        return out
    sid = cs.session_id
    out["session"] = sid
    host.seat({"session": sid, "party": job["ext"], "token": cs.tokens[job["ext"]], "agent": job["spec"],
               "deadline": args.deadline})
    # Wait for the host to report the seat over (or refused), then fetch the result; polling
    # GetResult while the session runs is not used: a release binary built before 71b3861 answers
    # it with UNKNOWN ("Stream removed") instead of FAILED_PRECONDITION.
    deadline = t0 + args.session_limit
    host.wait_seat(sid, deadline)
    result = None
    while True:
        try:
            result = client.result(sid)
            break
        except NegotiumError as e:
            if time.monotonic() >= deadline:
                out["last_result_error"] = str(e)[:200]
                break
        time.sleep(0.5)
    out["seconds"] = round(time.monotonic() - t0, 2)
    with host.lock:
        evs = list(host.events.get(sid, []))
    out["host_events"] = [e["event"] for e in evs]
    left = [e.get("left") for e in evs if e.get("event") == "ended" and e.get("left")]
    errors = [e.get("message") for e in evs if e.get("event") == "error"]
    if result is None:
        try:
            info = next((s for s in client.list_sessions() if s.session_id == sid), None)
            out["state_at_limit"] = info and f"{info.state} waiting_for={list(info.waiting_for)}"
            client.cancel(sid, owner_token=cs.owner_token)
        except Exception as e:  # noqa: BLE001
            out["cancel_error"] = str(e)[:200]
        out.update(status="stall", reason=(left or errors or [None])[0])
        return out
    parties = result.parties or []
    me = parties.index(job["ext"]) if job["ext"] in parties else None
    trace = result.record.get("trace") or []
    if trace and isinstance(trace[0], dict):
        first = trace[0].get("party", trace[0].get("proposer"))
        out["first_actor"] = parties[first] if isinstance(first, int) and first < len(parties) else first
    out.update(ended_by=result.ended_by, rounds=result.rounds, agreement=result.agreement is not None,
               utility=(result.utilities[me] if me is not None and me < len(result.utilities) else None))
    v = result.violation
    if v is not None:
        out["violation"] = {"party": v.party, "reason": v.reason}
        if me is not None and v.party == me:
            out.update(status="failed", reason=v.reason[:100])
        else:
            out.update(status="other", reason=f"violation by the boulware party: {v.reason}"[:200])
    elif result.ended_by in CLEAN_ENDINGS:
        out.update(status="clean")
    else:
        out.update(status="other", reason=f"ended_by {result.ended_by}; {(left or errors or [''])[0]}"[:200])
    if left:
        out["host_left"] = left[0][:200]
    if errors:
        out["host_error"] = errors[0][:200]
    return out


# --- summary -----------------------------------------------------------------


def summarize(sessions: list[dict], agents: dict[str, str]) -> list[dict]:
    rows = []
    for name in agents:
        ss = [s for s in sessions if s["agent"] == name]
        if not ss:
            continue
        st = [s["status"] for s in ss]
        status = "stall" if "stall" in st else "failed" if "failed" in st else "clean" if all(x == "clean" for x in st) else "other"
        us = [s["utility"] for s in ss if s.get("utility") is not None]
        reasons = [s["reason"] for s in ss if s["status"] != "clean" and s.get("reason")]
        rows.append(dict(agent=name, spec=agents[name], status=status, sessions=len(ss),
                         clean=st.count("clean"), failed=st.count("failed"), stalls=st.count("stall"),
                         agreement_rate=sum(bool(s.get("agreement")) for s in ss) / len(ss),
                         mean_utility=(sum(us) / len(us) if us else None),
                         reason=(reasons[0][:100] if reasons else "")))
    return rows


def failure_kind(reason: str) -> str:
    r = re.sub(r"^the agent left: ", "", reason or "")
    m = re.match(r"agent \S+ raised (\w+)", r)
    if m:
        return f"raised {m.group(1)}"
    if "did not finish on_start" in r:
        return "setup (on_start) past the setup allowance"
    if "did not answer within" in r:
        return "did not answer within the deadline"
    if "outside the domain" in r:
        return "offered an outcome outside the domain"
    if "process exited" in r or "killed by signal" in r:
        return "process died"
    return r[:60]


def markdown(meta: dict, rows: list[dict], broken: dict[str, str], unplayed: dict[str, str],
             control_rows: list[dict]) -> str:
    c = {k: sum(r["status"] == k for r in rows) for k in ("clean", "failed", "stall", "other")}
    kinds: dict[str, int] = {}
    for r in rows:
        if r["status"] == "failed":
            k = failure_kind(r["reason"])
            kinds[k] = kinds.get(k, 0) + 1
    lines = [
        f"## {meta['package']} ({meta['package_version']})",
        "",
        f"{len(rows)} agents x {meta['sessions_per_agent']} sessions against `boulware` "
        f"({', '.join(meta['domains'])}; {meta['rounds']} rounds; deadline {meta['deadline']} s per call; "
        f"each domain once with boulware opening, once with the agent opening), "
        f"{meta['concurrent']} in flight, limit {meta['session_limit']} s per session; "
        f"wall time {meta['wall_seconds']:.0f} s{'; ' + meta['note'] if meta.get('note') else ''}.",
        "",
        "| agents | clean | failed in the agent | stall | other |",
        "|---|---|---|---|---|",
        f"| {len(rows)} | {c['clean']} | {c['failed']} | {c['stall']} | {c['other']} |",
        "",
    ]
    reg = [r for r in rows if r.get("registered", True)]
    if len(reg) != len(rows):
        rc = {k: sum(r["status"] == k for r in reg) for k in ("clean", "failed", "stall")}
        lines += [f"Of these, the {len(reg)} that `anl_agents.get_agents` registers: {rc['clean']} clean, "
                  f"{rc['failed']} failed in the agent, {rc['stall']} stall.", ""]
    if kinds:
        lines += ["Failures by kind: " + ", ".join(f"{k}: {n}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1])) + ".", ""]
    if broken:
        lines += [f"Modules not importable here ({len(broken)}; any agents they define are not played):", ""]
        lines += [f"- `{m}`: {e[:120]}" for m, e in broken.items()]
        lines += [""]
    if unplayed:
        lines += [f"Classes that are not bilateral `SAONegotiator`s ({len(unplayed)}, not played): "
                  + ", ".join(f"`{k}`" for k in unplayed) + ".", ""]
    if any(not r.get("registered", True) for r in rows):
        lines += ["`*`: not one of the agents `anl_agents.get_agents` registers (a team's helper, template or variant).", ""]

    def table(rows: list[dict]) -> list[str]:
        out = ["| agent | result | clean/failed/stall of sessions | agreement rate | mean own utility | reason of failure |",
               "|---|---|---|---|---|---|"]
        for r in rows:
            mu = f"{r['mean_utility']:.3f}" if r["mean_utility"] is not None else "-"
            reason = r["reason"].replace("|", "\\|").replace("\n", " ")
            mark = "" if r.get("registered", True) else " `*`"
            out.append(f"| {r['agent']}{mark} | {r['status']} | {r['clean']}/{r['failed']}/{r['stalls']} of {r['sessions']} "
                       f"| {r['agreement_rate']:.2f} | {mu} | {reason} |")
        return out

    if control_rows:
        lines += ["Controls (negotium's misbehaving test agents, same sessions; not counted above):", ""]
        lines += table(control_rows) + [""]
    lines += table(rows)
    return "\n".join(lines) + "\n"


MD_HEAD = """# Breadth: every NegMAS agent package's agents, hosted, against `boulware`

Written by `python/bench/breadth.py` (one section per package: its docstring says what is played and how
sessions are classified). *clean*: every session ended by agreement, deadline or end-negotiation with no
violation; *failed in the agent*: a session ended with a violation recorded on the agent's party (the
host cut the agent off and said why); *stall*: a session had no result within the per-session limit.
Rerun: see each section's command (from `python/`, with `NEGOTIUM_BIN` the release binary).

"""


NOTES = {
    "anl_agents": """Why most ANL 2024 agents fail here: they are written for the ANL 2024 setting, in which each
negotiator is also given its opponent's utility function (`private_info["opponent_ufun"]`, the
reservation value hidden), and they `assert self.opponent_ufun` on their first call. A negotium party
knows only its own utility function, so the adapter gives none and the agent raises `AssertionError`;
the host cuts it off and the session ends with that violation on the agent's party. The same agents
raise the same assertion inside NegMAS's own `SAOMechanism` when added without `private_info`, and play
when given it, so this is the agents' precondition, not negotium's. The agents that "did not answer
within 10 s" or "did not finish on_start within 20 s" are slow (each per-call deadline is enforced by
the host, which kills the seat's process); none stalled a session.

Importing: `import anl_agents` (and each year's and team's `__init__`) imports every agent, some
needing torch, tensorflow, jax or xgboost, so without them nothing imports the ordinary way;
`bench/anl_shim.py` imports each agent's own module alone. The ANL 2025 agents are multi-deal
`ANL2025Negotiator`s (`SAOController`s), not bilateral `SAONegotiator`s, and are not played.
Installed with `pip install --no-deps anl-agents==0.2.0 anl==0.1.13 anl2025==0.1.7` next to
negmas 0.16.0 and negmas-genius-agents 0.3.0 (no torch, tensorflow, jax or xgboost).
""",
}


def write_md(path: Path, results: list[Path]) -> None:
    """BREADTH.md from every results file given (one section each, in order, de-duplicated by package)."""
    sections, seen = [], set()
    for p in results:
        try:
            d = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        pkg = d["meta"]["package"]
        if pkg in seen:
            continue
        seen.add(pkg)
        body = markdown(d["meta"], d["agents"], d.get("not_importable", {}), d.get("not_played", {}), d.get("controls", []))
        note = ("\n" + NOTES[pkg]) if pkg in NOTES else ""
        sections.append(body + f"\nCommand: `{d['meta']['command']}`\n" + note)
    order = {"negmas_genius_agents": 0}
    sections.sort(key=lambda b: order.get(b.split("## ", 1)[1].split(" ", 1)[0], 1))
    path.write_text(MD_HEAD + "\n".join(sections))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--package", default="negmas_genius_agents")
    ap.add_argument("--first", type=int, default=0, help="only the first N agents alphabetically (0: all)")
    ap.add_argument("--concurrent", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--deadline", type=float, default=10.0)
    ap.add_argument("--session-limit", type=float, default=120.0)
    ap.add_argument("--controls", action="store_true",
                    help="also play negotium's misbehaving test agents (hang, raise, bad outcome, exit), reported apart")
    ap.add_argument("--out", default=None, help="default bench/breadth_results[_anl].json")
    ap.add_argument("--md", default=None, help="default bench/BREADTH[_anl].md")
    args = ap.parse_args()
    suffix = "" if args.package == "negmas_genius_agents" else "_" + args.package.split("_")[0]
    args.out = args.out or str(HERE / f"breadth_results{suffix}.json")
    args.md = args.md or str(HERE / "BREADTH.md")

    from importlib.metadata import version

    from negotium import Client

    t_start = time.monotonic()
    agents, broken, unplayed = discover(args.package)
    note = ""
    if args.first:
        note = f"the first {args.first} of {len(agents)} agents alphabetically"
        agents = dict(list(agents.items())[: args.first])
    registered = anl_registered() if args.package == "anl_agents" else set(agents)
    controls = dict(CONTROLS) if args.controls else {}
    print(f"{len(agents)} agents, {len(broken)} modules not importable", file=sys.stderr, flush=True)

    server, addr = start_server(turn_timeout=args.deadline + 1)
    host = Host(addr, args.workers)
    scen = {d: scenario(DATA / d, args.rounds) for d in DOMAINS}
    jobs = []
    for i, (name, spec) in enumerate({**agents, **controls}.items()):
        for d in DOMAINS:
            toml, a, b = scen[d]
            for opens in ("boulware", "agent"):
                jobs.append(dict(agent=name, spec=spec, domain=d, toml=toml, ext=b, opens=opens,
                                 first=(b if opens == "agent" else a), seed=i))
    sessions: list[dict] = []
    done = [0]
    lock = threading.Lock()
    client = Client(addr, timeout=30)

    def run(job: dict) -> dict:
        r = play_one(client, host, job, args)
        with lock:
            done[0] += 1
            if r["status"] != "clean" or done[0] % 40 == 0:
                print(f"[{done[0]}/{len(jobs)} {time.monotonic() - t_start:.0f}s] {r['agent']} {r['domain']} "
                      f"opens={r['opens']}: {r['status']} {r.get('reason') or ''}"[:220], file=sys.stderr, flush=True)
        return r

    try:
        with ThreadPoolExecutor(args.concurrent) as pool:
            sessions = list(pool.map(run, jobs))
    finally:
        client.close()
        host.close()
        server.terminate()
    wall = time.monotonic() - t_start
    try:
        pv = version(args.package.replace("_", "-"))
    except Exception:  # noqa: BLE001
        pv = "?"
    meta = dict(package=args.package, package_version=pv, negmas=version("negmas"), agents=len(agents),
                domains=DOMAINS, rounds=args.rounds, deadline=args.deadline, concurrent=args.concurrent,
                workers=args.workers, session_limit=args.session_limit, sessions_per_agent=2 * len(DOMAINS),
                wall_seconds=round(wall, 1), note=note,
                command=f"cd python && NEGOTIUM_BIN={negotium_bin()} nice -n 10 {sys.executable} " + " ".join(sys.argv))
    rows = summarize(sessions, agents)
    for r in rows:
        r["registered"] = r["agent"] in registered
    control_rows = summarize(sessions, controls)
    counts = {k: sum(r["status"] == k for r in rows) for k in ("clean", "failed", "stall", "other")}
    Path(args.out).write_text(json.dumps(dict(meta=meta, counts=counts, not_importable=broken, not_played=unplayed,
                                              agents=rows, controls=control_rows, sessions=sessions), indent=1) + "\n")
    write_md(Path(args.md), [Path(args.out)] + sorted(p for p in Path(args.out).parent.glob("breadth_results*.json")
                                                      if p != Path(args.out)))
    print(json.dumps(dict(counts=counts, wall_seconds=round(wall, 1))), flush=True)


if __name__ == "__main__":
    main()
