"""What an agent and a client see of a session, as plain Python values.

The wire messages (``negotium.v1``) are turned into these frozen dataclasses
once, at the edge, so that agent code never touches protobuf: a
:class:`Session` is ``SessionSettings`` (with the party's own
:class:`~negotium.utility.UtilityFunction` built), a :class:`State` is a
``YourTurn`` (or the state after another party's ``ActionDone``), an
:class:`Action` is SAOP's offer / accept / end, and a :class:`Result` is a
``SessionResult``.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple

from negotium.utility import Domain, Outcome, UtilityFunction, outcome_from_pb

if TYPE_CHECKING:  # pragma: no cover
    from negotium.v1 import negotiation_pb2 as _pbm


class Seat(NamedTuple):
    """One party of one session, and the token that proves it (from CreateSession)."""

    session_id: str
    party: str
    token: str


class Response(enum.Enum):
    """An answer to the standing offer."""

    ACCEPT = "accept"
    REJECT = "reject"
    END = "end"  # end the negotiation (walk away)


@dataclass(frozen=True)
class Action:
    """What a party did on its turn: ``kind`` is ``"offer"`` (with ``offer``), ``"accept"`` or ``"end"``."""

    kind: str
    offer: Outcome | None = None

    @classmethod
    def make_offer(cls, outcome: Outcome) -> Action:
        return cls("offer", dict(outcome))

    @classmethod
    def accept(cls) -> Action:
        return cls("accept")

    @classmethod
    def end(cls) -> Action:
        return cls("end")

    @classmethod
    def from_pb(cls, a: _pbm.Action) -> Action:
        kind = a.WhichOneof("kind")
        if kind == "offer":
            return cls("offer", outcome_from_pb(a.offer))
        if kind == "accept":
            return cls("accept")
        if kind == "end_negotiation":
            return cls("end")
        return cls("none")

    def to_pb(self, domain: Domain) -> _pbm.Action:
        """Wire form; an offer is checked against ``domain`` (raises OutcomeError)."""
        from negotium._pb import pb

        if self.kind == "offer":
            if self.offer is None:
                raise ValueError("an offer action without an outcome")
            return pb.Action(offer=domain.outcome_to_pb(self.offer))
        if self.kind == "accept":
            return pb.Action(accept=pb.Accept())
        if self.kind == "end":
            return pb.Action(end_negotiation=pb.EndNegotiation())
        raise ValueError(f"unknown action kind {self.kind!r}")


@dataclass(frozen=True)
class Session:
    """A session as one party sees it once joined (``SessionSettings``).

    ``parties`` are in acting order (``parties[0]`` opens); ``deadline_rounds``
    and ``deadline_seconds`` are ``None`` where the session has no such
    deadline. ``seed`` is the party's own seed (``party_seed``): the one a
    local party in this seat would get, for reproducible randomness.
    ``turn_timeout_seconds`` is how long the server waits for each answer,
    ``setup_seconds`` what it adds to the first one.
    """

    session_id: str
    party: str
    party_index: int
    parties: tuple[str, ...]
    domain: Domain
    ufun: UtilityFunction
    protocol: str
    deadline_rounds: int | None
    deadline_seconds: float | None
    turn_timeout_seconds: float
    seed: int
    setup_seconds: float = 0.0

    @property
    def reservation_value(self) -> float:
        return self.ufun.reservation_value

    @property
    def discount(self) -> float:
        return self.ufun.discount

    @property
    def opponents(self) -> tuple[str, ...]:
        return tuple(p for p in self.parties if p != self.party)

    @classmethod
    def from_pb(cls, s: _pbm.SessionSettings) -> Session:
        domain = Domain.from_pb(s.domain)
        return cls(
            session_id=s.session_id,
            party=s.party,
            party_index=s.party_index,
            parties=tuple(s.parties),
            domain=domain,
            ufun=UtilityFunction.from_pb(domain, s.profile),
            protocol=s.protocol or "saop",
            deadline_rounds=s.deadline_rounds or None,
            deadline_seconds=s.deadline_seconds or None,
            turn_timeout_seconds=s.turn_timeout_seconds,
            seed=s.party_seed,
            setup_seconds=s.setup_seconds,
        )


@dataclass(frozen=True)
class State:
    """Where the negotiation stands when a party acts (``YourTurn``).

    ``time`` is negotium's relative time in [0, 1], NegMAS's
    ``relative_time``: ``(round + 1) / (rounds + 1)`` under a round deadline.
    ``standing_offer`` is ``None`` before the first offer; ``proposer`` names
    the party that made it. ``turn`` identifies the request (``None`` in the
    state passed to :meth:`~negotium.agent.Agent.on_action`).
    ``answer_within_seconds`` is how long the server waits for this answer.
    """

    session_id: str
    party: str
    round: int
    time: float
    standing_offer: Outcome | None
    proposer: str | None
    turn: int | None = None
    elapsed_seconds: float = 0.0
    remaining_seconds: float | None = None
    answer_within_seconds: float = 0.0

    @classmethod
    def from_pb(cls, t: _pbm.YourTurn, parties: tuple[str, ...]) -> State:
        has_offer = t.HasField("standing_offer")
        proposer = parties[t.proposer] if has_offer and t.proposer < len(parties) else None
        return cls(
            session_id=t.session_id,
            party=t.party,
            round=t.round,
            time=t.time,
            standing_offer=outcome_from_pb(t.standing_offer) if has_offer else None,
            proposer=proposer,
            turn=t.turn,
            elapsed_seconds=t.elapsed_seconds,
            remaining_seconds=t.remaining_seconds if t.HasField("remaining_seconds") else None,
            answer_within_seconds=t.answer_within_seconds,
        )


@dataclass(frozen=True)
class Violation:
    """A protocol violation that ended a session: who (index into the parties) and why."""

    party: int
    reason: str


@dataclass(frozen=True)
class Result:
    """The result of a finished session (``SessionResult``).

    ``utilities`` are per party, in the session's party order: the
    agreement's utility discounted at the agreement's relative time, or the
    reservation value where there was no agreement. ``rounds`` is the round
    the session ended in, plus 1. ``ended_by`` is ``agreement``,
    ``deadline``, ``end-negotiation``, ``violation`` or ``aborted``.
    ``record`` is the full record (the JSON ``negotium run --out`` writes),
    trace and undiscounted utilities included.
    """

    session_id: str
    scenario: str
    seed: int
    agreement: Outcome | None
    utilities: tuple[float, ...]
    rounds: int
    offers: int
    ended_by: str
    violation: Violation | None
    record_json: str = field(repr=False, default="")

    @cached_property
    def record(self) -> dict[str, Any]:
        return json.loads(self.record_json) if self.record_json else {}

    @property
    def parties(self) -> list[str]:
        return list(self.record.get("parties", []))

    @classmethod
    def from_pb(cls, r: _pbm.SessionResult) -> Result:
        return cls(
            session_id=r.session_id,
            scenario=r.scenario,
            seed=r.seed,
            agreement=outcome_from_pb(r.agreement) if r.HasField("agreement") else None,
            utilities=tuple(r.utilities),
            rounds=r.rounds,
            offers=r.offers,
            ended_by=r.ended_by,
            violation=Violation(r.violation.party, r.violation.reason) if r.HasField("violation") else None,
            record_json=r.record_json,
        )


@dataclass(frozen=True)
class ActionEvent:
    """An action of a watched session (``ActionDone``): ``party`` indexes the session's parties."""

    session_id: str
    party: int
    action: Action
    round: int
    time: float

    @classmethod
    def from_pb(cls, a: _pbm.ActionDone) -> ActionEvent:
        return cls(a.session_id, a.party, Action.from_pb(a.action), a.round, a.time)


@dataclass(frozen=True)
class SessionInfo:
    """A session as ``ListSessions`` shows it."""

    session_id: str
    scenario: str
    state: str
    parties: tuple[str, ...]
    waiting_for: tuple[str, ...]
    ended_by: str
    ending: str

    @classmethod
    def from_pb(cls, s: _pbm.SessionInfo) -> SessionInfo:
        return cls(
            s.session_id, s.scenario, s.state, tuple(s.parties), tuple(s.waiting_for), s.ended_by, s.ending
        )


@dataclass(frozen=True)
class CreatedSession:
    """What CreateSession returns: the session id, one token per external party, the owner token."""

    session_id: str
    tokens: dict[str, str]
    owner_token: str

    def seats(self, parties: list[str] | None = None) -> list[Seat]:
        """Seats for ``parties`` (default: every external party), ready for :func:`negotium.play`."""
        names = list(self.tokens) if parties is None else parties
        return [Seat(self.session_id, p, self.tokens[p]) for p in names]


_MASK = (1 << 64) - 1


def _splitmix64(state: int) -> int:
    """One output of SplitMix64 from ``state`` (negotium's ``SplitMix64::new(state).next_u64()``)."""
    z = (state + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def party_seed(session_seed: int, index: int) -> int:
    """The seed negotium gives party ``index`` of a session with ``session_seed`` (``SessionSettings.party_seed``).

    ``next(next(seed XOR index * 0xD1B54A32D192ED03))`` as the proto states
    it, products modulo 2^64: what a local party in that seat would get, so
    that an external agent can reproduce a local run.
    """
    return _splitmix64(_splitmix64((session_seed ^ (index * 0xD1B54A32D192ED03)) & _MASK))
