"""Any NegMAS ``SAONegotiator`` playing a negotium seat, as NegMAS itself would run it.

    from negotium import play
    from negotium.negmas_adapter import NegMASAgent

    play(lambda: NegMASAgent("negmas_genius_agents:HardHeaded"), created.seats(), "127.0.0.1:7000")

Design: a real ``SAOMechanism`` in lockstep with the session
-------------------------------------------------------------

Many negotiators (most ANAC ports) read their negotiation through the NMI
(``nmi.n_steps``, ``nmi.outcome_space``, ``nmi.random_outcome()``,
``nmi.negotiator_ids``, ``state.relative_time``, ...) and are called by
the mechanism in a particular order with particular callbacks. Rather than
imitate all of that, the adapter runs a REAL ``SAOMechanism`` (NegMAS 0.16)
per seat, in its own thread, holding:

* the hosted negotiator, at the seat's index in ``session.parties``;
* one proxy negotiator per other party, whose response each turn is what
  that party really did on the server (learned from ``ActionDone``).

A subclass of the mechanism intercepts ``_safe_counter``, the one call
through which ``SAOMechanism`` asks any negotiator for its response. For a
proxy it blocks until the server reports that party's action and hands the
mechanism that action; for the hosted negotiator it blocks until the
server's ``YourTurn``, checks that both agree on the round and the standing
offer, lets the mechanism call the negotiator as usual, and sends what it
answered back to the session. Everything else is NegMAS's own code: who
opens, the step counter and ``relative_time`` ((step + 1) / (n_steps + 1)),
offering is accepting, ``None`` from ``propose`` ending the negotiation,
``on_negotiation_start``, ``on_round_start``, ``on_partner_proposal``,
``on_partner_response``, ``on_round_end`` and ``on_negotiation_end``. A
negotiator hosted here therefore sees the very calls and states it would see
in ``SAOMechanism`` against the same opponents, and a session with NegMAS
agents in every seat reproduces ``SAOMechanism``'s run (for deterministic
negotiators; see tests/test_fidelity.py).

The price is one thread per seat and two queue hand-offs per turn, which is
small next to a negotiator's own work (bench/host_speed.py measures it).

Preferences
-----------

The outcome space is rebuilt with ``make_issue``: discrete issues as
categorical issues of their string values, integer issues as integer
ranges, real issues as float ranges; outcomes are tuples in issue order.
A linear-additive profile becomes a ``LinearAdditiveUtilityFunction`` with
one ``TableFun`` per discrete or integer issue (each value's utility
computed by :mod:`negotium.utility`, so the table holds the server's floats)
and a ``LambdaFun`` delegating to negotium for real issues; NegMAS then sums
``0.0 + w_i * f_i`` left to right, exactly as the server does, so every
utility is bit-equal. Hyper-rectangle profiles become a ``UtilityFunction``
subclass that delegates to :mod:`negotium.utility`. The reservation value is
the ufun's ``reserved_value``; a discount ``d < 1`` wraps the ufun in
``ExpDiscountedUFun(discount=d, factor="relative_time")``, NegMAS's
``u * d ** relative_time``, the server's formula.

What SAOP on negotium cannot express
------------------------------------

``NO_RESPONSE``, ``WAIT`` and ``LEAVE`` responses, and a rejection without a
counter-offer, end the negotiation (in a bilateral ``SAOMechanism`` LEAVE
and a missing counter-offer do the same). A wall-time deadline
(``deadline_seconds``) is followed through the server's clock: the
mechanism's ``time`` is the server's elapsed time, so ``relative_time``
agrees to within the network delay, and only the server ends the session
on time.

Randomness: where ``seed_globals`` is true (the default) the adapter seeds
Python's ``random`` and NumPy's global generator from the seat's
``party_seed`` when the session starts, which is how most NegMAS negotiators
draw random numbers. ``Mechanism.step`` also draws from ``random`` each time
the wall clock passes a whole second (a draw that decides nothing when there
is no per-second ending probability); the lockstep mechanism skips that
draw, so a seat's random stream depends on its seed alone. In a process that
plays one seat (the host's) runs are then reproducible; in a process playing
several seats they share one stream. A negotiator that draws from
``random`` still cannot reproduce an SAOMechanism run, where both
negotiators draw from one stream in turn.
"""

from __future__ import annotations

import inspect
import queue
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from negotium.agent import Agent
from negotium.types import Action, Result, Session, State
from negotium.utility import DISCRETE, INTEGER, Domain, Outcome, UtilityFunction

try:  # NegMAS is an optional dependency: `pip install negotium[negmas]`.
    import negmas  # noqa: F401
    from negmas.outcomes import make_issue, make_os
    from negmas.preferences import LinearAdditiveUtilityFunction
    from negmas.preferences import UtilityFunction as NegmasUtilityFunction
    from negmas.preferences.discounted import ExpDiscountedUFun
    from negmas.preferences.value_fun import LambdaFun, TableFun
    from negmas.sao import ResponseType, SAOMechanism, SAONegotiator, SAOResponse
except ImportError as e:  # pragma: no cover - exercised only without negmas
    raise ImportError(
        f"negotium.negmas_adapter needs NegMAS ({e}): pip install 'negotium[negmas]' (negmas==0.16.0)"
    ) from e

TABLE_LIMIT = 100_000
"""Integer issues up to this many values get a TableFun; larger ones a LambdaFun."""

SETUP_WAIT_S = 3600.0
"""Upper bound on one wait for the mechanism thread in-process (the host enforces the real deadlines)."""


# ------------------------------------------------------------------ outcome space


def make_issues(domain: Domain) -> list[Any]:
    """NegMAS issues for the domain: strings for discrete values, int ranges, float ranges."""
    issues = []
    for i in domain.issues:
        if i.kind == DISCRETE:
            issues.append(make_issue(list(i.values), name=i.name))
        elif i.kind == INTEGER:
            issues.append(make_issue((int(i.min), int(i.max)), name=i.name))
        else:
            issues.append(make_issue((float(i.min), float(i.max)), name=i.name))
    return issues


def make_outcome_space(domain: Domain) -> Any:
    return make_os(make_issues(domain), name=domain.name)


def to_negmas(domain: Domain, outcome: Mapping[str, Any]) -> tuple:
    """A negotium outcome (dict) as a NegMAS outcome (tuple in issue order)."""
    return tuple(outcome[i.name] for i in domain.issues)


def from_negmas(domain: Domain, outcome: Any) -> Outcome:
    """A NegMAS outcome (tuple, or dict by issue name) as a checked negotium outcome."""
    if isinstance(outcome, Mapping):
        return domain.coerce(outcome)
    values = tuple(outcome)
    if len(values) != len(domain.issues):
        from negotium.utility import OutcomeError

        raise OutcomeError(f"an outcome of {len(values)} values for {len(domain.issues)} issues: {values!r}")
    return domain.coerce({i.name: v for i, v in zip(domain.issues, values)})


# ------------------------------------------------------------------ preferences


class NegotiumUFun(NegmasUtilityFunction):
    """A NegMAS utility function that evaluates with :mod:`negotium.utility` (used for hyper-rectangles)."""

    def __init__(self, ufun: UtilityFunction, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._negotium = ufun
        self._names = [i.name for i in ufun.domain.issues]

    def eval(self, offer: Any) -> float:
        if offer is None:
            return self.reserved_value
        return self._negotium(dict(zip(self._names, offer)))

    def xml(self, issues: Any) -> str:  # pragma: no cover - Genius export is not offered
        raise NotImplementedError("a negotium hyper-rectangle utility function has no Genius XML form")


def make_ufun(ufun: UtilityFunction, outcome_space: Any | None = None, name: str | None = None) -> Any:
    """The NegMAS utility function giving exactly negotium's floats for ``ufun`` (see the module doc)."""
    domain = ufun.domain
    os_ = outcome_space if outcome_space is not None else make_outcome_space(domain)
    rv = ufun.reservation_value
    if ufun.kind == "linear-additive":
        values = []
        for w, f, issue in zip(ufun.weights, ufun.values, domain.issues):
            n = issue.cardinality
            if n is not None and n <= TABLE_LIMIT:
                values.append(TableFun({issue.value_at(k): f(issue, issue.value_at(k)) for k in range(n)}))
            else:
                values.append(LambdaFun(lambda x, f=f, issue=issue: f(issue, x)))
        inner = LinearAdditiveUtilityFunction(
            values=values, weights=list(ufun.weights), outcome_space=os_, reserved_value=rv, name=name
        )
    else:
        inner = NegotiumUFun(ufun, outcome_space=os_, reserved_value=rv, name=name)
    if ufun.discount < 1.0:
        return ExpDiscountedUFun(
            ufun=inner, discount=ufun.discount, factor="relative_time", outcome_space=os_, reserved_value=rv, name=name
        )
    return inner


# ------------------------------------------------------------------ the lockstep mechanism


class LockstepError(RuntimeError):
    """The NegMAS mechanism and the session disagree (a bug, or a party the adapter cannot follow)."""


class _Ended(Exception):
    """The session finished while the mechanism waited for a party."""

    def __init__(self, result: Result | None) -> None:
        self.result = result


class _Proxy(SAONegotiator):
    """Another party of the session inside the mechanism; its responses are given, never computed."""

    def propose(self, state: Any, dest: str | None = None) -> Any:  # pragma: no cover - never called
        raise LockstepError("a remote party's proxy was asked to propose")


class LockstepMechanism(SAOMechanism):
    """``SAOMechanism`` whose negotiators' responses come from, and go to, a negotium session."""

    def __init__(self, adapter: NegMASAgent, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._adapter = adapter
        # Mechanism.step draws one extra random.random() whenever the wall clock
        # passes a whole second (for `pend_per_second`, 0 here, so the draw decides
        # nothing). It shifts the stream negotiators draw from by an amount that
        # depends on how fast the run went; without it a seat's randomness depends
        # on its seed only, as in an SAOMechanism run shorter than a second.
        if not self._internal_nmi.pend_per_second:
            self._Mechanism__last_second_tried = float("inf")

    @property
    def time(self) -> float:
        """The session's elapsed wall time by the server's clock (kept just short of a wall-time limit)."""
        t = self._adapter._server_elapsed()
        limit = self.time_limit
        if limit is not None and limit != float("inf"):
            t = min(t, limit * (1.0 - 1e-9))
        return t

    def _safe_counter(self, negotiator: Any, state: Any, times: Any, action: Any, exceptions: Any, dest: Any = None, **kw: Any) -> Any:  # noqa: E501
        a = self._adapter
        try:
            if negotiator is a.negotiator:
                turn = a._wait_turn()
                a._check_lockstep(self, turn)
                response, erred = super()._safe_counter(negotiator, state, times, action, exceptions, dest, **kw)
                a._answered(self, response)
                return response, erred
            given = a._wait_remote(self.negotiator_index(negotiator.id))
        except _Ended as e:
            # The session is over (deadline by the clock, a violation, an abort): end the
            # mechanism too. A None response is NegMAS's time-out; END its broken state.
            if e.result is not None and e.result.ended_by == "deadline":
                return None, False
            return SAOResponse(ResponseType.END_NEGOTIATION, None), False
        return super()._safe_counter(negotiator, state, times, {negotiator.id: given}, exceptions, dest, **kw)


# ------------------------------------------------------------------ the agent


def _accepts(cls: Any, name: str) -> bool:
    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):
        return False
    return name in sig.parameters or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())


class NegMASAgent(Agent):
    """A negotium :class:`~negotium.agent.Agent` that plays a NegMAS negotiator through a lockstep ``SAOMechanism``.

    ``negotiator`` is a NegMAS negotiator class, an import path
    (``"module:Class"`` / ``"module.Class"``) or a zero-argument factory;
    ``params`` are its constructor's keyword arguments. The negotiator is
    made when the session starts, named after the party.
    """

    def __init__(
        self,
        negotiator: type | str | Callable[[], Any],
        params: Mapping[str, Any] | None = None,
        *,
        seed_globals: bool = True,
    ) -> None:
        if isinstance(negotiator, str):
            from negotium._loading import load_class

            negotiator = load_class(negotiator)
        self.negotiator_type = negotiator
        self.params = dict(params or {})
        self.seed_globals = seed_globals
        self.negotiator: Any = None
        self.mechanism: LockstepMechanism | None = None
        self._inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._outbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._clock = (0.0, time.monotonic())
        self._ended: Result | None = None
        self._finished = False

    @property
    def name(self) -> str:
        t = self.negotiator_type
        return getattr(t, "__name__", type(t).__name__)

    def make_negotiator(self, name: str | None = None) -> Any:
        kwargs = dict(self.params)
        if name is not None and "name" not in kwargs and _accepts(self.negotiator_type, "name"):
            kwargs["name"] = name
        return self.negotiator_type(**kwargs)

    def validate(self) -> None:
        """Makes one negotiator with the parameters, so that bad ones fail before any session."""
        self.make_negotiator()

    # ---------------------------------------------------------- negotium side (the driver's thread)

    def on_start(self, session: Session) -> None:
        if session.protocol not in ("saop", ""):
            raise ValueError(f"NegMAS negotiators play SAOP here, not {session.protocol!r}")
        if self.seed_globals:
            random.seed(session.seed)
            try:
                import numpy

                numpy.random.seed(session.seed % (1 << 32))
            except ImportError:  # pragma: no cover
                pass
        self._clock = (0.0, time.monotonic())
        os_ = make_outcome_space(session.domain)
        self.ufun = make_ufun(session.ufun, os_, name=session.party)
        self.negotiator = self.make_negotiator(session.party)
        mech = LockstepMechanism(
            self,
            outcome_space=os_,
            n_steps=session.deadline_rounds,
            time_limit=session.deadline_seconds,
            sync_calls=True,
            name=session.session_id,
        )
        for k, party in enumerate(session.parties):
            if k == session.party_index:
                mech.add(self.negotiator, preferences=self.ufun)
            else:
                mech.add(_Proxy(name=party, id=f"{party}"))
        self.mechanism = mech
        self._thread = threading.Thread(target=self._run, name=f"negmas-{session.session_id}-{session.party}", daemon=True)
        self._thread.start()
        # Setup (on_negotiation_start, first round's callbacks) happens now, within on_start's allowance.
        kind, value = self._outbox.get(timeout=SETUP_WAIT_S)
        if kind == "error":
            raise value
        if kind not in ("waiting", "done"):
            raise LockstepError(f"unexpected {kind} from the mechanism at start")

    def on_action(self, party: str, action: Action, state: State) -> None:
        assert self.negotiator is not None
        k = self.session.parties.index(party) if party in self.session.parties else -1
        self._inbox.put(("action", (k, action)))

    def act(self, state: State) -> Action:
        self._clock = (state.elapsed_seconds, time.monotonic())
        self._inbox.put(("turn", state))
        while True:
            kind, value = self._outbox.get(timeout=SETUP_WAIT_S)
            if kind == "waiting":
                continue
            if kind == "error":
                raise value
            if kind == "done":
                raise LockstepError("the NegMAS mechanism ended while the session still asks for a turn")
            return self._to_action(value)

    def on_end(self, result: Result) -> None:
        self._ended = result
        self._inbox.put(("finished", result))
        if self._thread is not None:
            self._thread.join(timeout=10.0)

    def _to_action(self, answered: tuple[Any, bool]) -> Action:
        response, standing_none = answered
        if response is None:
            return Action.end()
        r = response.response
        if r == ResponseType.ACCEPT_OFFER:
            return Action.end() if standing_none else Action.accept()
        if r == ResponseType.REJECT_OFFER and response.outcome is not None:
            return Action.make_offer(from_negmas(self.session.domain, response.outcome))
        # END_NEGOTIATION, a rejection without a counter-offer, NO_RESPONSE, WAIT, LEAVE.
        return Action.end()

    # ---------------------------------------------------------- mechanism side (its own thread)

    def _run(self) -> None:
        mech = self.mechanism
        assert mech is not None
        try:
            while True:
                mech.step()
                if not mech.state.running:
                    break
            self._outbox.put(("done", None))
        except BaseException as e:  # handed to the driver, which leaves the seat saying why
            self._outbox.put(("error", e))

    def _server_elapsed(self) -> float:
        base, at = self._clock
        return base + (time.monotonic() - at)

    def _next(self) -> tuple[str, Any]:
        if self._finished:
            raise _Ended(self._ended)
        self._outbox.put(("waiting", None))
        kind, value = self._inbox.get()
        if kind == "finished":
            self._finished = True
            raise _Ended(value)
        return kind, value

    def _wait_turn(self) -> State:
        kind, value = self._next()
        if kind != "turn":
            raise LockstepError(f"the mechanism expected this party's turn, the session reported another party's {value[1].kind}")
        return value

    def _wait_remote(self, index: int) -> Any:
        kind, value = self._next()
        if kind != "action":
            raise LockstepError(
                f"the mechanism expected party {index}'s action, the session asks this party to act (round {value.round})"
            )
        k, action = value
        if k != index:
            raise LockstepError(f"the mechanism expected party {index}'s action, the session reported party {k}'s")
        if action.kind == "offer":
            return SAOResponse(ResponseType.REJECT_OFFER, to_negmas(self.session.domain, action.offer))
        if action.kind == "accept":
            return SAOResponse(ResponseType.ACCEPT_OFFER, self.mechanism.state.current_offer if self.mechanism else None)
        return SAOResponse(ResponseType.END_NEGOTIATION, None)

    def _check_lockstep(self, mech: LockstepMechanism, turn: State) -> None:
        s = mech.state
        if s.step != turn.round:
            raise LockstepError(f"the mechanism is at step {s.step}, the session at round {turn.round}")
        standing = turn.standing_offer
        mine = s.current_offer
        theirs = to_negmas(self.session.domain, standing) if standing is not None else None
        if (mine is None) != (theirs is None) or (mine is not None and tuple(mine) != theirs):
            raise LockstepError(f"the mechanism's standing offer is {mine!r}, the session's {theirs!r}")

    def _answered(self, mech: LockstepMechanism, response: Any) -> None:
        self._outbox.put(("answer", (response, mech.state.current_offer is None)))
