"""NegMAS's own SAOMechanism on a negotium scenario: the reference side of
the fidelity tests.

The utility functions are rebuilt from the scenario TOML that `negotium
import` wrote, with the converter the hosted agents use (so both tools
negotiate over the very same floats; NegMAS's own Genius loader normalises
differently), a discount as NegMAS's `ExpDiscountedUFun` over relative
time, as negotium applies it.

NegMAS's inverse utility sorts outcomes with numpy's default `argsort`,
which is not stable: the order of outcomes of equal utility depends on the
SIMD instructions numpy finds on the CPU (AVX2 and AVX-512 give one order,
the baseline build another). `stable_ties()` makes that sort stable, which
gives NegMAS one order on every machine: the enumeration order, the one
negotium uses. It replaces the `np` that NegMAS's presorting module sees by
a copy whose `argsort` is stable; NegMAS's code is not changed.
"""

from __future__ import annotations

import tomllib
import types
from pathlib import Path
from typing import Any

STRATEGIES = ("boulware", "conceder", "linear")


def stable_ties() -> None:
    import numpy as np
    import negmas.preferences.inv_ufun.presorting as presorting

    stable = types.ModuleType("numpy_with_stable_argsort")
    stable.__dict__.update({k: getattr(np, k) for k in dir(np) if not k.startswith("__")})
    stable.argsort = lambda a, *args, **kwargs: np.argsort(a, kind="stable")
    presorting.np = stable


def load(path: Path) -> dict[str, Any]:
    with open(path, "rb") as f:
        return tomllib.load(f)


def ufuns(scenario: dict[str, Any], discount: bool = True):
    """The NegMAS issues and utility functions of a scenario's parties,
    through the converter hosted agents use
    (:func:`negotium.negmas_adapter.make_ufun`)."""
    from negotium.negmas_adapter import make_outcome_space, make_ufun
    from negotium.utility import Domain, Issue, UtilityFunction, ValueFunction

    issues = []
    for i in scenario["issues"]:
        if i["type"] != "discrete":
            raise ValueError(f"issue {i['name']}: only discrete issues are rebuilt here")
        issues.append(Issue.discrete(i["name"], list(i["values"])))
    domain = Domain(scenario["name"], tuple(issues))
    os_ = make_outcome_space(domain)
    out = []
    for p in scenario["parties"]:
        tables = [ValueFunction("table", tuple(p["values"][i.name][v] for v in i.values)) for i in issues]
        weights = [p["weights"][i.name] for i in issues]
        u = UtilityFunction.linear_additive(
            domain, weights, tables, p.get("reservation", 0.0), p.get("discount", 1.0) if discount else 1.0
        )
        out.append(make_ufun(u, os_, name=p["name"]))
    return os_, out


def negotiate(scenario: dict[str, Any], a: str, b: str, discount: bool = True) -> dict[str, Any]:
    """One SAOMechanism negotiation of NegMAS's time-based negotiators, as
    negotium's result records say it: offers in order, rounds, agreement."""
    from negmas import SAOMechanism
    from negmas.sao.negotiators import BoulwareTBNegotiator, ConcederTBNegotiator, LinearTBNegotiator

    cls = {"boulware": BoulwareTBNegotiator, "conceder": ConcederTBNegotiator, "linear": LinearTBNegotiator}
    os_, (ua, ub) = ufuns(scenario, discount)
    m = SAOMechanism(outcome_space=os_, n_steps=scenario["protocol"]["rounds"])
    m.add(cls[a](name="A"), ufun=ua)
    m.add(cls[b](name="B"), ufun=ub)
    state = m.run()
    names = [i.name for i in os_.issues]
    # The per-step states hold every offer of the step in order; the full
    # trace relabels or blanks an offer that the next action ends.
    offers = [
        (st.step, "AB".index(who[0]), dict(zip(names, o))) for st in m.history for who, o in st.new_offers if o is not None
    ]
    agreement = dict(zip(names, state.agreement)) if state.agreement is not None else None
    return {"offers": offers, "rounds": state.step, "agreement": agreement}
