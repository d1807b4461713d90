"""Shared machinery of the fidelity tests: settings probes, hosted runs, reference runs, comparison."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftest import TESTS, agents_env, host_command, imported, with_external

from negotium import Agent, Client, Session, play


class _Probe(Agent):
    """Learns the seat's settings (domain, own utility function) and ends the negotiation at once."""

    def on_start(self, session: Session) -> None:
        self.seen = session

    def propose(self, state: Any) -> None:
        return None

    def respond(self, state: Any, offer: Any) -> Any:
        from negotium import Response

        return Response.END


def settings_of(server: Any, toml: str) -> list[Session]:
    """Every party's Session (as the server sends it), in acting order."""
    c = Client(server.address)
    created = c.create_session(toml, join_timeout=30)
    probes = {p: _Probe() for p in created.tokens}
    play([probes[p] for p in created.tokens], created.seats(), server.address)
    sessions = sorted((a.seen for a in probes.values()), key=lambda s: s.party_index)
    c.close()
    return sessions


@dataclass
class Case:
    """One negotiation: a domain folder, one agent per party in acting order."""

    domain: Path
    agents: list[str]
    rounds: int = 100
    seed: int | None = None
    toml: str = ""
    sessions: list[Session] = field(default_factory=list)
    session_id: str = ""
    tokens: dict[str, str] = field(default_factory=dict)
    hosted: dict[str, Any] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.domain.parent.name}/{self.domain.name} {' vs '.join(a.split(':')[-1] for a in self.agents)}"


def prepare(server: Any, cases: list[Case], **create: Any) -> None:
    """Creates one session per case and learns its parties' settings.

    Parties whose agent is ``local:STRATEGY`` are played by the server with
    that strategy (CreateSession's strategy override); the others are
    external, for the host.
    """
    cache: dict[tuple[Path, int], tuple[str, list[Session]]] = {}
    c = Client(server.address)
    for case in cases:
        key = (case.domain, case.rounds)
        if key not in cache:
            toml = with_external(imported(case.domain), rounds=case.rounds)
            cache[key] = (toml, settings_of(server, toml))
        all_external, case.sessions = cache[key]
        local = {s.party: a.split(":", 1)[1] for s, a in zip(case.sessions, case.agents) if a.startswith("local:")}
        if local:
            external = [s.party for s in case.sessions if s.party not in local]
            case.toml = with_external(imported(case.domain), parties=external, rounds=case.rounds)
        else:
            case.toml = all_external
        seeded = {"seed": case.seed} if case.seed is not None else {}
        created = c.create_session(case.toml, join_timeout=120, strategies=local or None, **seeded, **create)
        case.session_id, case.tokens = created.session_id, created.tokens
    c.close()


def host_all(server: Any, cases: list[Case], workers: int = 2, deadline: float = 8.0, timeout: float = 150) -> list[dict]:
    """Plays every seat of every case in ONE negotium-agents host; returns its events."""
    lines = []
    for case in cases:
        for s, agent in zip(case.sessions, case.agents):
            if agent.startswith("local:"):
                continue
            lines.append(
                json.dumps(
                    {"session": case.session_id, "party": s.party, "token": case.tokens[s.party], "agent": agent, "deadline": deadline}
                )
            )
    p = subprocess.run(
        [*host_command(), "serve", "--server", server.address, "--workers", str(workers)],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        env=agents_env(),
        timeout=timeout,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    events = [json.loads(x) for x in p.stdout.splitlines() if x.strip()]
    c = Client(server.address)
    for case in cases:
        r = c.result(case.session_id)
        case.hosted = {"result": r, "record": r.record}
    c.close()
    return events


def run_reference(cases: list[Case], agents_for: Any = None, timeout: float = 150) -> None:
    """Runs each case in NegMAS's SAOMechanism (one subprocess, PYTHONHASHSEED=0)."""
    jobs = []
    for case in cases:
        agents = agents_for(case) if agents_for else case.agents
        jobs.append(
            {
                "domain": case.sessions[0].domain,
                "ufuns": [s.ufun for s in case.sessions],
                "names": [s.party for s in case.sessions],
                "agents": agents,
                "n_steps": case.rounds,
                **({"seed": case.seed} if case.seed is not None else {}),
            }
        )
    p = subprocess.run(
        [sys.executable, str(TESTS / "_reference.py")],
        input=pickle.dumps(jobs),
        capture_output=True,
        env=agents_env(),
        timeout=timeout,
    )
    assert p.returncode == 0, p.stderr.decode()[-3000:]
    outs = [json.loads(x) for x in p.stdout.decode().splitlines() if x.strip()]
    assert len(outs) == len(cases), p.stderr.decode()[-3000:]
    for case, out in zip(cases, outs):
        case.reference = out


def differences(case: Case) -> list[str]:
    """How the hosted run differs from the reference (empty: identical)."""
    ref, rec, r = case.reference, case.hosted["record"], case.hosted["result"]
    if "error" in ref:
        return [f"the reference run failed: {ref['error']}"]
    names = [i.name for i in case.sessions[0].domain.issues]
    hosted_trace = [[e["round"], e["party"], [e["outcome"][n] for n in names]] for e in rec["trace"] if e["action"] == "offer"]
    out = []
    if hosted_trace != ref["trace"]:
        k = next((i for i, (a, b) in enumerate(zip(hosted_trace, ref["trace"])) if a != b), min(len(hosted_trace), len(ref["trace"])))
        out.append(
            f"offer traces differ at offer {k} (of {len(hosted_trace)} hosted, {len(ref['trace'])} reference): "
            f"hosted {hosted_trace[k:k + 1]}, reference {ref['trace'][k:k + 1]}"
        )
    agreement = [r.agreement[n] for n in names] if r.agreement else None
    if agreement != ref["agreement"]:
        out.append(f"agreements differ: hosted {agreement}, reference {ref['agreement']}")
    if r.rounds != ref["step"]:
        out.append(f"rounds differ: hosted {r.rounds}, reference {ref['step']}")
    if agreement is not None and agreement == ref["agreement"]:
        if list(rec["undiscounted_utilities"]) != ref["undiscounted"]:
            out.append(f"undiscounted utilities differ: server {rec['undiscounted_utilities']}, NegMAS {ref['undiscounted']}")
        if list(r.utilities) != ref["discounted"]:
            out.append(f"discounted utilities differ: server {list(r.utilities)}, NegMAS {ref['discounted']}")
    if r.violation is not None:
        out.append(f"the hosted run ended with a violation: {r.violation.reason}")
    return out
