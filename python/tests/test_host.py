"""negotium-agents: hard per-call deadlines, isolation between seats, and the play/serve/check interfaces."""

from __future__ import annotations

import json
import subprocess
import threading
import time

import pytest
from conftest import agents_env, genius, host_command, imported, negotium_bin, require_negmas, start_server, with_external
from hosted_agents import Greedy

from negotium import Client, play

ITEX = "y2010/ItexvsCypress"
PARTY = "ItexvsCypress_Itex"  # external; the Cypress side is negotium's local boulware


def one_external(rounds: int = 40) -> str:
    return with_external(imported(genius(ITEX)), parties=[PARTY], rounds=rounds)


class HostRun:
    """A `negotium-agents serve` subprocess, its events and when each arrived."""

    def __init__(self, server_address: str, lines: list[dict], workers: int = 2, timeout: float = 90, args: list[str] = ()) -> None:
        self.start = time.monotonic()
        self.proc = subprocess.Popen(
            [*host_command(), "serve", "--server", server_address, "--workers", str(workers), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=agents_env(),
        )
        self.events: list[tuple[float, dict]] = []
        self.stderr = ""
        reader = threading.Thread(target=self._read, daemon=True)
        reader.start()
        err = threading.Thread(target=self._err, daemon=True)
        err.start()
        assert self.proc.stdin is not None
        for line in lines:
            self.proc.stdin.write((line if isinstance(line, str) else json.dumps(line)) + "\n")
        self.proc.stdin.close()
        self.rc = self.proc.wait(timeout)
        reader.join(5)
        err.join(5)
        self.elapsed = time.monotonic() - self.start

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.append((time.monotonic() - self.start, json.loads(line)))

    def _err(self) -> None:
        assert self.proc.stderr is not None
        self.stderr = self.proc.stderr.read()

    def of(self, kind: str, session: str | None = None) -> list[tuple[float, dict]]:
        return [(t, e) for t, e in self.events if e["event"] == kind and (session is None or e.get("session") == session)]

    def ended(self, session: str) -> dict:
        [(_, e)] = self.of("ended", session)
        return e


def seat_line(created, agent: str, deadline: float | None = None, params: dict | None = None, party: str = PARTY) -> dict:
    line = {"session": created.session_id, "party": party, "token": created.tokens[party], "agent": agent}
    if deadline is not None:
        line["deadline"] = deadline
    if params:
        line["params"] = params
    return line


def test_misbehaving_agents_lose_their_seat_within_their_deadline_and_nothing_else(server):
    require_negmas()
    c = Client(server.address)
    toml = one_external()
    bad = {
        "Sleeper": "agent Sleeper did not answer within 1 s",
        "Raiser": "agent Raiser raised ValueError: no answer today",
        "Outsider": "agent Outsider offered an outcome outside the domain: issue `Price` has no value 'no-such-value'",
        "Exiter": "the agent's process exited (status 3)",
    }
    sessions = {name: c.create_session(toml, seed=7, join_timeout=30) for name in bad}
    good = [c.create_session(toml, seed=s, join_timeout=30) for s in (1, 2)]
    negmas_session = c.create_session(toml, seed=3, join_timeout=30)
    lines = [seat_line(sessions[n], f"hosted_agents:{n}", deadline=1.0) for n in bad]
    lines += [seat_line(g, "hosted_agents:Greedy", deadline=1.0, params={"threshold": 0.7}) for g in good]
    lines.append(seat_line(negmas_session, "negmas_genius_agents:HardHeaded", deadline=5.0))
    run = HostRun(server.address, lines)
    assert run.rc == 0, run.stderr[-2000:]
    assert run.elapsed < 60, f"the host took {run.elapsed:.1f} s"
    seated_at = {e["session"]: t for t, e in run.of("seated")}
    for name, reason in bad.items():
        sid = sessions[name].session_id
        ended = run.ended(sid)
        assert ended["left"] == reason, (name, ended)
        assert ended["ended_by"] == "violation" and ended["violation"] == {"party": PARTY, "reason": f"the agent left: {reason}"}
        r = c.result(sid)
        assert r.violation.reason == f"the agent left: {reason}" and r.rounds == 1
        t = [t for t, e in run.of("ended", sid)][0]
        assert t - seated_at[sid] < 1.0 + 4.0, f"{name} was cut off {t - seated_at[sid]:.1f} s after it was seated"
    # The other sessions in the same host finished normally, with the results they have when played alone.
    for g, seed in zip(good, (1, 2)):
        hosted = c.result(g.session_id)
        assert hosted.violation is None and run.ended(g.session_id)["left"] is None
        alone = c.create_session(toml, seed=seed, join_timeout=30)
        ref = play(Greedy(0.7), alone.seats(), server.address)[alone.seats()[0]].result
        assert (hosted.agreement, hosted.utilities, hosted.record["trace"]) == (ref.agreement, ref.utilities, ref.record["trace"])
    from negotium.negmas_adapter import NegMASAgent

    hosted = c.result(negmas_session.session_id)
    alone = c.create_session(toml, seed=3, join_timeout=30)
    ref = play(NegMASAgent("negmas_genius_agents:HardHeaded"), alone.seats(), server.address)[alone.seats()[0]].result
    assert hosted.violation is None and hosted.ended_by == "agreement"
    assert (hosted.agreement, hosted.utilities, hosted.record["trace"]) == (ref.agreement, ref.utilities, ref.record["trace"])


def test_a_hung_on_start_is_cut_off_after_the_setup_allowance(tmp_path):
    quick = start_server(negotium_bin(), tmp_path / "serve.log", "--turn-timeout", "3", "--setup-timeout", "1")
    try:
        c = Client(quick.address)
        toml = one_external(rounds=10)
        hung = c.create_session(toml, join_timeout=20)
        slow = c.create_session(toml, join_timeout=20)
        run = HostRun(
            quick.address,
            [
                seat_line(hung, "hosted_agents:SlowStart", deadline=1.0, params={"seconds": 600}),
                seat_line(slow, "hosted_agents:SlowStart", deadline=1.0, params={"seconds": 1.5}),
            ],
        )
        assert run.rc == 0, run.stderr
        assert run.ended(hung.session_id)["left"] == "agent SlowStart did not finish on_start within 2 s", (run.events, run.stderr)
        assert run.ended(hung.session_id)["left"] == "agent SlowStart did not finish on_start within 2 s"
        # 1.5 s of setup is within the 1 s deadline plus the server's 1 s setup allowance.
        assert run.ended(slow.session_id)["left"] is None and run.ended(slow.session_id)["ended_by"] != "violation"
    finally:
        quick.proc.kill()
        quick.proc.wait()


def test_serve_reports_bad_lines_refused_joins_and_unloadable_agents_and_goes_on(server):
    c = Client(server.address)
    toml = one_external(rounds=20)
    ok = c.create_session(toml, seed=5, join_timeout=30)
    missing = c.create_session(toml, join_timeout=30)
    wrong = c.create_session(toml, join_timeout=5)
    lines = [
        "this is not json",
        json.dumps({"session": ok.session_id, "party": PARTY}),
        seat_line(missing, "no_such_module:Agent", deadline=1.0),
        {**seat_line(wrong, "hosted_agents:Greedy"), "token": "wrong"},
        seat_line(ok, "hosted_agents:make_greedy", params={"threshold": 0.7}),
    ]
    run = HostRun(server.address, lines)
    assert run.rc == 0, run.stderr[-2000:]
    errors = [e for _, e in run.of("error")]
    assert errors[0]["code"] == "malformed" and "not json" in errors[0]["message"].lower() or "expecting" in errors[0]["message"].lower()
    assert errors[1]["code"] == "malformed" and "token, agent" in errors[1]["message"]
    agent_err = [e for e in errors if e.get("session") == missing.session_id]
    assert agent_err and "pip install no-such-module" in agent_err[0]["message"]
    r = c.result(missing.session_id)
    assert r.violation.reason.startswith("the agent left: agent no_such_module:Agent could not start") and "pip install" in r.violation.reason
    refused = [e for e in errors if e.get("session") == wrong.session_id]
    assert refused and refused[0]["code"] == "unauthenticated"
    assert run.ended(ok.session_id)["left"] is None and c.result(ok.session_id).violation is None
    assert [e["event"] for _, e in run.events][0] == "ready"


def test_play_prints_the_record_and_exits_0(server):
    c = Client(server.address)
    cs = c.create_session(one_external(rounds=20), seed=2, join_timeout=30)
    p = subprocess.run(
        [*host_command(), "play", "--server", server.address, "--session", cs.session_id, "--party", PARTY,
         "--token", cs.tokens[PARTY], "--agent", "hosted_agents:Greedy", "--params", '{"threshold": 0.7}'],
        capture_output=True, text=True, env=agents_env(), timeout=60,
    )
    assert p.returncode == 0, p.stderr
    record = json.loads(p.stdout)
    assert record["session"] == cs.session_id and record == c.result(cs.session_id).record
    bad = c.create_session(one_external(rounds=20), join_timeout=30)
    p = subprocess.run(
        [*host_command(), "play", "--server", server.address, "--session", bad.session_id, "--party", PARTY,
         "--token", bad.tokens[PARTY], "--agent", "hosted_agents:Raiser", "--deadline", "2"],
        capture_output=True, text=True, env=agents_env(), timeout=60,
    )
    assert p.returncode == 1 and "agent Raiser raised ValueError" in p.stderr


@pytest.mark.parametrize(
    "spec, params, code, says",
    [
        ("hosted_agents:Greedy", None, 0, "ok: hosted_agents:Greedy makes Greedy"),
        ("hosted_agents:make_greedy", '{"threshold": 0.5}', 0, "ok"),
        ("no_such_pkg.sub:Agent", None, 2, "pip install no-such-pkg"),
        ("hosted_agents:Gredy", None, 2, "has no `Gredy`; did you mean Greedy"),
        ("hosted_agents:Greedy", '{"treshold": 1}', 2, "takes no parameter 'treshold'; it takes threshold"),
        ("hosted_agents:Greedy", "[1]", 2, "must be a JSON object"),
        ("json:JSONDecoder", None, 2, "neither a negotium.Agent nor a NegMAS negotiator"),
        ("Greedy", None, 2, "module:Class"),
    ],
)
def test_check_says_what_is_missing(spec, params, code, says):
    args = [*host_command(), "check", spec] + (["--params", params] if params else [])
    p = subprocess.run(args, capture_output=True, text=True, env=agents_env(), timeout=60)
    assert p.returncode == code, p.stdout + p.stderr
    assert says in (p.stdout + p.stderr)


def test_check_finds_negmas_negotiators():
    require_negmas()
    p = subprocess.run([*host_command(), "check", "negmas_genius_agents.HardHeaded"], capture_output=True, text=True, env=agents_env(), timeout=60)
    assert p.returncode == 0 and "NegMASAgent (HardHeaded)" in p.stdout
    p = subprocess.run([*host_command(), "check", "negmas.sao:BoulwareTBNegotiator", "--params", '{"bogus": 1}'], capture_output=True, text=True, env=agents_env(), timeout=60)
    assert p.returncode == 2 and "unexpected keyword argument 'bogus'" in p.stderr
