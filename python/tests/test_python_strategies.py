"""Python strategies named in negotium's own commands: `negotium run` and
`negotium tournament` start the agent host themselves, seat the Python
parties and write the same records as for native strategies.

Prerequisites as for every test here (conftest.py), with the package
installed (the host runs as `python -m negotium.host`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import genius, imported, negotium_bin, require_negmas

import negmas_reference as ref

ENV = dict(os.environ, NEGOTIUM_PYTHON=sys.executable)


@pytest.fixture(scope="module", autouse=True)
def prerequisites():
    require_negmas()


@pytest.fixture(scope="module")
def itex(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("domains") / "itex.toml"
    out.write_text(imported(genius("y2010/ItexvsCypress")))
    return out


def run(*args: str, timeout: float = 240, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(negotium_bin()), *args], capture_output=True, text=True, env=env or ENV, timeout=timeout)


def test_a_negmas_agent_in_negotium_run_plays_as_in_negmas(itex, tmp_path):
    """HardHeaded (negmas-genius-agents) hosted in `negotium run` against the
    built-in boulware: the session NegMAS's own SAOMechanism gives for
    HardHeaded against BoulwareTBNegotiator, offer for offer."""
    from negmas import SAOMechanism
    from negmas.sao.negotiators import BoulwareTBNegotiator
    from negmas_genius_agents import HardHeaded

    out = tmp_path / "r.jsonl"
    r = run("run", str(itex), "--strategy", "0=boulware", "--strategy", '1={ python = "negmas_genius_agents:HardHeaded" }', "--out", str(out))
    assert r.returncode == 0, r.stderr
    record = json.loads(out.read_text().splitlines()[0])
    assert record["engine"] == "agent-host"
    assert record["strategies"] == ["boulware", "python(negmas_genius_agents:HardHeaded)"]
    assert record["violation"] is None

    scenario = ref.load(itex)
    os_, (ua, ub) = ref.ufuns(scenario)
    m = SAOMechanism(outcome_space=os_, n_steps=scenario["protocol"]["rounds"])
    m.add(BoulwareTBNegotiator(name="A"), ufun=ua)
    m.add(HardHeaded(name="B"), ufun=ub)
    state = m.run()
    names = [i.name for i in os_.issues]
    theirs = [(st.step, "AB".index(w[0]), dict(zip(names, o))) for st in m.history for w, o in st.new_offers if o is not None]
    ours = [(e["round"], e["party"], e["outcome"]) for e in record["trace"] if e["action"] == "offer"]
    assert ours == theirs
    assert record["rounds"] == state.step
    assert record["agreement"] == (dict(zip(names, state.agreement)) if state.agreement is not None else None)


def test_a_tournament_mixes_native_and_python_entrants(itex, tmp_path):
    t = tmp_path / "t.toml"
    t.write_text(
        f'''name = "mixed"
scenarios = ["{itex}"]
strategies = ["boulware", "conceder", {{ python = "negmas_genius_agents:HardHeaded", label = "HardHeaded" }}]
repetitions = 1
'''
    )
    out = tmp_path / "out"
    r = run("tournament", str(t), "--out", str(out))
    assert r.returncode == 0, r.stderr + r.stdout
    summary = (out / "summary.csv").read_text()
    assert "HardHeaded" in summary and "boulware" in summary, summary
    rows = [r.split(",") for r in summary.splitlines()[1:]]
    lines = (out / "results.jsonl").read_text().splitlines()
    assert len(lines) == sum(int(r[2]) for r in rows) // 2, "every planned negotiation, each with two entrants"
    records = [json.loads(l) for l in lines]
    assert all(r["violation"] is None for r in records)
    assert sum(r["strategies"].count("python(negmas_genius_agents:HardHeaded)") for r in records) == int(
        next(r for r in rows if r[1] == "HardHeaded")[2]
    )


def test_a_class_that_is_not_there_stops_the_run_before_it_starts(itex):
    r = run("run", str(itex), "--strategy", '1={ python = "negmas_genius_agents:NoSuchAgent" }')
    assert r.returncode == 2
    assert "has no `NoSuchAgent`" in r.stderr
    r = run("run", str(itex), "--strategy", '1={ python = "no_such_package:Agent" }')
    assert r.returncode == 2
    assert "no_such_package" in r.stderr and "pip install" in r.stderr


def test_an_agent_that_raises_is_a_violation_and_the_run_goes_on(itex, tmp_path):
    agents = tmp_path / "bad_agents.py"
    agents.write_text(
        '''from negotium import Agent

class Raises(Agent):
    def propose(self, state):
        raise ValueError("no bid today")

    def respond(self, state, offer):
        raise ValueError("no answer today")
'''
    )
    out = tmp_path / "r.jsonl"
    env = dict(ENV, PYTHONPATH=str(tmp_path))
    r = run("run", str(itex), "--strategy", '1={ python = "bad_agents:Raises" }', "--repeat", "2", "--out", str(out), env=env)
    assert r.returncode == 0, r.stderr
    records = [json.loads(l) for l in out.read_text().splitlines()]
    assert len(records) == 2
    for rec in records:
        assert rec["ended_by"] == "violation"
        assert rec["violation"]["party"] == 1
        assert "no answer today" in rec["violation"]["reason"] or "no bid today" in rec["violation"]["reason"], rec["violation"]
