"""Runs negotiations in NegMAS's own SAOMechanism: the reference the hosted runs are compared with.

Run as a script (``python tests/_reference.py < jobs.pickle``) so that it
gets its own process and hash seed, like the host's seat processes
(PYTHONHASHSEED=0 for both, set by the test). Each job is a dict with the
``domain``, one negotium ``UtilityFunction`` per party (as the server sent
them), one agent spec (``module:Class``) and name per party, in acting
order, ``n_steps`` and optionally ``seed`` (Python's and NumPy's global
generators are seeded with it first). The utility functions are converted by
:func:`negotium.negmas_adapter.make_ufun`, the converter the hosted agents
use, never by NegMAS's Genius loader (which normalises differently).

Prints one JSON object per job: the offer trace (step, negotiator index,
offer), the agreement, the final step, how it ended, and each party's
NegMAS utilities of the outcome (undiscounted, and discounted at the
agreement's relative time) for comparison with the server's result.
"""

from __future__ import annotations

import json
import pickle
import sys
from typing import Any


def run(job: dict[str, Any]) -> dict[str, Any]:
    import attrs
    from negmas.sao import SAOMechanism

    from negotium._loading import load_class
    from negotium.negmas_adapter import make_outcome_space, make_ufun

    domain = job["domain"]
    if "seed" in job:  # for stochastic negotiators: one seeded stream, as in any NegMAS run
        import random

        import numpy

        random.seed(job["seed"])
        numpy.random.seed(job["seed"] % (1 << 32))
    os_ = make_outcome_space(domain)
    m = SAOMechanism(outcome_space=os_, n_steps=job["n_steps"])
    ufuns = []
    for name, spec, uf in zip(job["names"], job["agents"], job["ufuns"]):
        u = make_ufun(uf, os_, name=name)
        ufuns.append(u)
        m.add(load_class(spec)(name=name), preferences=u)
    m.run()
    ids = list(m.negotiator_ids)
    # Offers from the mechanism's history, each under the step it was made in.
    # (``full_trace`` relabels the last offer with the step of its acceptance.)
    trace = [
        [h.step, ids.index(nid), [v.item() if hasattr(v, "item") else v for v in o]]
        for h in m.history
        for nid, o in h.new_offers
        if o is not None
    ]
    s = m.state
    agreement = list(s.agreement) if s.agreement is not None else None
    undiscounted, discounted = [], []
    for u in ufuns:
        if agreement is None:
            undiscounted.append(u.reserved_value)
            discounted.append(u.reserved_value)
            continue
        undiscounted.append(float(getattr(u, "ufun", u)(tuple(agreement))))
        # NegMAS's relative time during the agreement's step s: (s + 1) / (n_steps + 1); the
        # final state has counted that step, so its `step` is s + 1.
        at = attrs.evolve(s, relative_time=s.step / (job["n_steps"] + 1))
        ev = getattr(u, "eval_on_state", None)
        discounted.append(float(ev(tuple(agreement), None, at)) if ev else float(u(tuple(agreement))))
    return {
        "trace": trace,
        "agreement": agreement,
        "step": s.step,
        "broken": bool(s.broken),
        "timedout": bool(s.timedout),
        "undiscounted": undiscounted,
        "discounted": discounted,
    }


def main() -> None:
    jobs = pickle.load(sys.stdin.buffer)
    for job in jobs:
        try:
            out = run(job)
        except Exception as e:  # reported per job, the test says which
            out = {"error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
