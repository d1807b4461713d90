"""negotium's built-in time-dependent strategies against NegMAS's time-based
negotiators, session for session, on real ANAC domains: the claim of the
README section "Exactly NegMAS".

Each domain is imported with `negotium import`, every pair of boulware,
conceder and linear is negotiated by `negotium run` and by NegMAS's
SAOMechanism (python/tests/negmas_reference.py), and the two must agree on
every offer (who, what, in which round), the rounds and the agreement.

Prerequisites as for every test here (conftest.py): NegMAS, the negotium
binary and ../shared/data; under CI a missing one fails.
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

# Ties in utility (Airport, Acquisition), discount (Camera, Grocery,
# Acquisition), reservation values (Airport, Acquisition), and none of them
# (ItexvsCypress).
DOMAINS = [
    "y2010/ItexvsCypress",
    "y2012/AirportSiteSelectionA",
    "y2012/CameraB",
    "y2011/Grocery",
    "y2012/AcquisitionC",
]
PAIRS = [(a, b) for a in ref.STRATEGIES for b in ref.STRATEGIES]


@pytest.fixture(scope="module", autouse=True)
def prerequisites():
    require_negmas()
    ref.stable_ties()


def scenario_file(tmp_path_factory, domain: str) -> Path:
    out = tmp_path_factory.mktemp("domains") / (domain.replace("/", "-") + ".toml")
    out.write_text(imported(genius(domain)))
    return out


def negotium_run(toml: Path, a: str, b: str, tmp: Path, convention: str | None = None) -> dict:
    def strategy(role: int, name: str) -> str:
        spec = name if convention is None else f'{{ type = "{name}", convention = "{convention}" }}'
        return f"{role}={spec}"

    out = tmp / f"{a}-{b}-{convention}.jsonl"
    subprocess.run(
        [str(negotium_bin()), "run", str(toml), "--strategy", strategy(0, a), "--strategy", strategy(1, b), "--out", str(out), "--force"],
        check=True,
        capture_output=True,
    )
    record = json.loads(out.read_text().splitlines()[0])
    offers = [(e["round"], e["party"], e["outcome"]) for e in record["trace"] if e["action"] == "offer"]
    return {"offers": offers, "rounds": record["rounds"], "agreement": record["agreement"]}


def first_difference(ours: dict, theirs: dict) -> str:
    for k, (x, y) in enumerate(zip(ours["offers"], theirs["offers"])):
        if x != y:
            return f"offer {k}: negotium {x}, NegMAS {y}"
    return (
        f"{len(ours['offers'])} vs {len(theirs['offers'])} offers, rounds {ours['rounds']} vs {theirs['rounds']}, "
        f"agreement {ours['agreement']} vs {theirs['agreement']}"
    )


@pytest.mark.parametrize("domain", DOMAINS)
def test_built_ins_are_negmas_session_for_session(domain, tmp_path_factory, tmp_path):
    toml = scenario_file(tmp_path_factory, domain)
    scenario = ref.load(toml)
    differ = []
    for a, b in PAIRS:
        ours = negotium_run(toml, a, b, tmp_path)
        theirs = ref.negotiate(scenario, a, b)
        if ours != theirs:
            differ.append(f"{a}-{b}: {first_difference(ours, theirs)}")
    assert not differ, f"{domain}: {len(differ)} of {len(PAIRS)} sessions differ from NegMAS:\n" + "\n".join(differ)


@pytest.mark.parametrize("domain", ["y2012/CameraB", "y2012/AcquisitionC"])
def test_the_genius_convention_decides_undiscounted(domain, tmp_path_factory, tmp_path):
    """With convention = "genius" a discounted party decides as NegMAS's
    negotiators do when the discount is left out of their utility
    functions; that differs from NegMAS with the discount in."""
    toml = scenario_file(tmp_path_factory, domain)
    scenario = ref.load(toml)
    assert any(p.get("discount", 1.0) < 1.0 for p in scenario["parties"]), "a discounted domain"
    changed = 0
    for a, b in PAIRS:
        genius = negotium_run(toml, a, b, tmp_path, convention="genius")
        undiscounted = ref.negotiate(scenario, a, b, discount=False)
        assert genius == undiscounted, f"{a}-{b}: {first_difference(genius, undiscounted)}"
        changed += genius != ref.negotiate(scenario, a, b)
    assert changed > 0, "the discount changed no NegMAS session: the domain shows nothing"


def test_negmas_own_tie_order_depends_on_the_cpu(tmp_path_factory):
    """The evidence for README's statement that NegMAS has no one tie order:
    its default (unstable) sort, on the same machine and the same NegMAS,
    gives other sessions when numpy is kept from using AVX2/AVX-512."""
    import numpy as np

    from numpy._core._multiarray_umath import __cpu_features__ as cpu

    if not cpu.get("AVX2"):
        pytest.skip("this CPU has no AVX2: numpy's sort is the baseline one either way")
    toml = scenario_file(tmp_path_factory, "y2012/AirportSiteSelectionA")
    snippet = (
        "import json, sys; sys.path.insert(0, %r); import negmas_reference as ref; "
        "s = ref.load(%r); print(json.dumps([ref.negotiate(s, a, b) for a in ref.STRATEGIES for b in ref.STRATEGIES]))"
    ) % (str(Path(__file__).parent), str(toml))

    def sessions(env: dict) -> list:
        out = subprocess.run([sys.executable, "-c", snippet], check=True, capture_output=True, text=True, env=env)
        return json.loads(out.stdout)

    simd = sessions(dict(os.environ))
    baseline = sessions(dict(os.environ, NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL AVX512_SPR X86_V3"))
    differ = sum(x != y for x, y in zip(simd, baseline))
    assert differ > 0, f"numpy {np.__version__}: NegMAS's sessions no longer depend on the CPU; update README"
