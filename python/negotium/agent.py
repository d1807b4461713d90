"""Write a negotiation agent as a class with two methods, and play it over gRPC.

    from negotium import Agent, Response, play

    class Hardliner(Agent):
        def on_start(self, session):
            self.best = session.ufun.best()          # own utility function, exact

        def propose(self, state):
            return self.best                          # an outcome {issue: value}; None ends the negotiation

        def respond(self, state, offer):
            u = self.session.ufun(offer)
            return Response.ACCEPT if u >= 0.9 else Response.REJECT   # or True / False

    results = play(Hardliner, created.seats(), "127.0.0.1:7000")

The protocol is SAOP with NegMAS's conventions (see the proto): parties act
in ``session.parties`` order, the first one opening. On its turn a party
with a standing offer is asked :meth:`Agent.respond`; if it rejects, or
when there is no standing offer, :meth:`Agent.propose` gives its new offer
(offering is accepting one's own offer). ``state.time`` is NegMAS's
relative time ``(round + 1) / (rounds + 1)``.

:func:`play` plays many seats of many sessions over ONE ``Negotiate``
stream: it joins each seat with its token and routes every message by
session id and party to that seat's agent. Agents run in the calling
thread, one call at a time; an agent that raises or offers an outcome
outside the domain gives up its seat with a ``Leave`` that says why, and the
other seats play on. Nothing here can stop an agent that hangs or kills
the process: for that, host agents with ``negotium-agents``
(:mod:`negotium.host`), which puts each behind a hard deadline.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from negotium._pb import pb
from negotium.errors import NegotiumError
from negotium.types import Action, Response, Result, Seat, Session, State
from negotium.utility import Outcome, OutcomeError

log = logging.getLogger("negotium.agent")

REASON_LIMIT = 240
"""Leave reasons are cut to this many characters (the server cuts to its name limit anyway)."""

JOIN_REFUSALS = ("not-found", "unauthenticated", "already-joined", "finished", "too-many-seats")
"""Stream error codes that mean a seat's Join was refused: it will never play."""


class Agent:
    """Base class of negotium agents: override :meth:`propose` and :meth:`respond`.

    Optional hooks: :meth:`on_start` (the session, own utility function and
    deadline, before the first turn), :meth:`on_action` / :meth:`on_offer`
    (what the other parties did) and :meth:`on_end` (the result). One
    instance plays one seat; :func:`play` makes one per seat from a class or
    factory.
    """

    session: Session
    """The session this agent plays, set before :meth:`on_start` is called."""

    @property
    def name(self) -> str:
        """How records and violations name this agent (the class name by default)."""
        return type(self).__name__

    def on_start(self, session: Session) -> None:
        """Called once, when the seat is joined; ``session.setup_seconds`` extends the first turn's deadline."""

    def propose(self, state: State) -> Outcome | None:
        """The offer to make now: an outcome ``{issue: value}``, or ``None`` to end the negotiation."""
        raise NotImplementedError(f"{type(self).__name__} must implement propose(state)")

    def respond(self, state: State, offer: Outcome) -> Response | bool:
        """The answer to the standing ``offer``: ``Response.ACCEPT``/``REJECT``/``END``, or ``True``/``False``."""
        raise NotImplementedError(f"{type(self).__name__} must implement respond(state, offer)")

    def on_action(self, party: str, action: Action, state: State) -> None:
        """Another party acted (``state`` is the state after its action); calls :meth:`on_offer` for offers."""
        if action.kind == "offer" and action.offer is not None:
            self.on_offer(party, action.offer, state)

    def on_offer(self, party: str, offer: Outcome, state: State) -> None:
        """Another party made ``offer``."""

    def on_end(self, result: Result) -> None:
        """The session is over; ``result.utilities`` are in ``session.parties`` order."""

    def act(self, state: State) -> Action:
        """One turn: :meth:`respond` to the standing offer, then :meth:`propose` unless it accepted or ended.

        Override this instead of the two methods to decide a turn in one go
        (the NegMAS adapter does).
        """
        if state.standing_offer is not None:
            r = _response(self, self.respond(state, state.standing_offer))
            if r is Response.ACCEPT:
                return Action.accept()
            if r is Response.END:
                return Action.end()
        offer = self.propose(state)
        if offer is None:
            return Action.end()
        return Action.make_offer(offer)


def _response(agent: Agent, r: object) -> Response:
    if isinstance(r, Response):
        return r
    if isinstance(r, bool):
        return Response.ACCEPT if r else Response.REJECT
    raise TypeError(f"respond() returned {r!r}; expected Response.ACCEPT/REJECT/END or a bool")


def cut(reason: str) -> str:
    """A Leave reason on one line and at most :data:`REASON_LIMIT` characters."""
    one_line = " ".join(reason.split())
    return one_line if len(one_line) <= REASON_LIMIT else one_line[: REASON_LIMIT - 1] + "…"


def describe_exception(agent_name: str, e: BaseException) -> str:
    """``agent HardHeaded raised ValueError: ...``: what a Leave and the record say."""
    msg = str(e)
    return cut(f"agent {agent_name} raised {type(e).__name__}" + (f": {msg}" if msg else ""))


def leave_message(seat: Seat, reason: str) -> Any:
    return pb.AgentMessage(leave=pb.Leave(session_id=seat.session_id, party=seat.party, reason=cut(reason)))


def join_message(seat: Seat) -> Any:
    return pb.AgentMessage(join=pb.Join(session_id=seat.session_id, party=seat.party, token=seat.token))


# A call the driver wants made on the agent: (function, args). The sync
# driver calls it, the async one also awaits what it returns.
Call = tuple[Callable[..., Any], tuple[Any, ...]]


class SeatDriver:
    """The protocol for one seat: turns server messages into calls on the agent and answers.

    Transport-free (the stream runners, the async runner and the host's seat
    processes all use it), so every runner plays exactly the same protocol.
    :meth:`handle` takes one ``ServerMessage`` addressed to this seat and
    returns the ``AgentMessage``\\ s to send. An agent that raises, answers
    with something that is not an action or offers an outcome outside the
    domain ends its seat: the answer is a ``Leave`` saying why, and
    :attr:`failure` holds the reason.
    """

    def __init__(self, agent: Agent, seat: Seat) -> None:
        self.agent = agent
        self.seat = seat
        self.session: Session | None = None
        self.result: Result | None = None
        self.failure: str | None = None
        self.errors: list[NegotiumError] = []
        self.refused: NegotiumError | None = None
        self._standing: Outcome | None = None
        self._proposer: str | None = None

    @property
    def done(self) -> bool:
        """Finished, refused, or given up: nothing more will come for this seat."""
        return self.result is not None or self.refused is not None

    def agent_name(self) -> str:
        try:
            return str(self.agent.name)
        except Exception:
            return type(self.agent).__name__

    # ---------------------------------------------------------- the steps

    def steps(self, msg: Any) -> Generator[Call, Any, list[Any]]:
        """What to do with one message, as a generator of agent calls (see :meth:`handle`)."""
        kind = msg.WhichOneof("kind")
        if kind == "settings":
            session = Session.from_pb(msg.settings)
            self.session = session
            self.agent.session = session
            if self.failure is None:
                try:
                    yield (self.agent.on_start, (session,))
                except Exception as e:
                    return self._fail(describe_exception(self.agent_name(), e))
            return []
        if kind == "action_done":
            a = msg.action_done
            if self.session is None or self.failure is not None:
                return []
            action = Action.from_pb(a.action)
            parties = self.session.parties
            who = parties[a.party] if a.party < len(parties) else str(a.party)
            if action.kind == "offer":
                self._standing, self._proposer = action.offer, who
            state = State(
                session_id=a.session_id,
                party=self.seat.party,
                round=a.round,
                time=a.time,
                standing_offer=self._standing,
                proposer=self._proposer,
            )
            try:
                yield (self.agent.on_action, (who, action, state))
            except Exception as e:
                return self._fail(describe_exception(self.agent_name(), e))
            return []
        if kind == "your_turn":
            t = msg.your_turn
            if self.session is None:
                return self._fail("a turn came before the session's settings")
            if self.failure is not None:
                return []
            state = State.from_pb(t, self.session.parties)
            try:
                answer = yield (self.agent.act, (state,))
                action = self._check(answer, state)
            except OutcomeError as e:
                return self._fail(f"agent {self.agent_name()} offered an outcome outside the domain: {e}")
            except Exception as e:
                return self._fail(describe_exception(self.agent_name(), e))
            if action.kind == "offer":
                self._standing, self._proposer = action.offer, self.seat.party
            return [
                pb.AgentMessage(
                    act=pb.Act(
                        session_id=t.session_id,
                        turn=t.turn,
                        party=self.seat.party,
                        action=action.to_pb(self.session.domain),
                    )
                )
            ]
        if kind == "finished":
            self.result = Result.from_pb(msg.finished.result)
            if self.session is not None and self.failure is None:
                try:
                    yield (self.agent.on_end, (self.result,))
                except Exception as e:
                    # The session is over: nothing to leave, but say so.
                    log.warning("%s", describe_exception(self.agent_name(), e) + " in on_end")
            return []
        if kind == "error":
            m = msg.error
            err = NegotiumError(m.code, m.message, session_id=m.session_id, party=m.party)
            if m.code in JOIN_REFUSALS and self.session is None:
                self.refused = err
            else:
                self.errors.append(err)
            return []
        return []

    def _check(self, answer: object, state: State) -> Action:
        """The agent's answer as a valid Action of this seat (offers coerced to the domain's types)."""
        assert self.session is not None
        if isinstance(answer, Response):
            answer = {Response.ACCEPT: Action.accept(), Response.END: Action.end()}.get(answer, answer)
            if answer is Response.REJECT:
                raise TypeError("act() returned Response.REJECT without an offer")
        if not isinstance(answer, Action):
            raise TypeError(f"act() returned {answer!r}, not an Action")
        if answer.kind == "accept" and state.standing_offer is None:
            raise TypeError("the agent accepted when no offer was on the table")
        if answer.kind == "offer":
            return Action.make_offer(self.session.domain.coerce(answer.offer))
        if answer.kind not in ("accept", "end"):
            raise TypeError(f"unknown action kind {answer.kind!r}")
        return answer

    def _fail(self, reason: str) -> list[Any]:
        self.failure = cut(reason)
        log.info("session %s, party %s: %s", self.seat.session_id, self.seat.party, self.failure)
        return [leave_message(self.seat, self.failure)]

    # ---------------------------------------------------------- sync driving

    def handle(self, msg: Any) -> list[Any]:
        """Handles one message, calling the agent synchronously; returns the messages to send."""
        gen = self.steps(msg)
        try:
            call = next(gen)
            while True:
                fn, args = call
                try:
                    value = fn(*args)
                except Exception as e:  # handed to the generator, which turns it into a Leave
                    call = gen.throw(e)
                else:
                    call = gen.send(value)
        except StopIteration as stop:
            return list(stop.value or [])


def route_key(msg: Any) -> tuple[str, str]:
    """(session id, party) a server message is addressed to ("" where it names no party)."""
    kind = msg.WhichOneof("kind")
    if kind == "settings":
        return msg.settings.session_id, msg.settings.party
    if kind == "your_turn":
        return msg.your_turn.session_id, msg.your_turn.party
    if kind == "action_done":
        return msg.action_done.session_id, msg.action_done.to_party
    if kind == "finished":
        return msg.finished.session_id, msg.finished.party
    if kind == "error":
        return msg.error.session_id, msg.error.party
    return "", ""


class Router:
    """Seats by (session, party), for messages that name their party and for those that do not."""

    def __init__(self) -> None:
        self.by_key: dict[tuple[str, str], Any] = {}
        self.by_session: dict[str, list[Any]] = {}

    def add(self, seat: Seat, target: Any) -> None:
        self.by_key[(seat.session_id, seat.party)] = target
        self.by_session.setdefault(seat.session_id, []).append(target)

    def remove(self, seat: Seat) -> None:
        t = self.by_key.pop((seat.session_id, seat.party), None)
        lst = self.by_session.get(seat.session_id)
        if lst is not None and t is not None:
            lst.remove(t)
            if not lst:
                del self.by_session[seat.session_id]

    def targets(self, msg: Any) -> list[Any]:
        """Where a message goes: its seat; every seat of the session where it names none (and it concerns all)."""
        sid, party = route_key(msg)
        if party:
            t = self.by_key.get((sid, party))
            return [t] if t is not None else []
        seats = self.by_session.get(sid, [])
        if len(seats) <= 1 or msg.WhichOneof("kind") in ("finished", "error"):
            return list(seats)
        return []  # ambiguous: the server names the party whenever a stream plays several

    def __len__(self) -> int:
        return len(self.by_key)


@dataclass
class SeatResult:
    """How one seat ended: the session's result, why the agent lost the seat, or why it never played."""

    seat: Seat
    result: Result | None = None
    failure: str | None = None
    error: NegotiumError | None = None

    @classmethod
    def of(cls, d: SeatDriver) -> SeatResult:
        return cls(d.seat, d.result, d.failure, d.refused)


AgentSource = Union[Agent, Callable[[], Agent], Sequence[Agent]]


def make_agents(agent: AgentSource, seats: Sequence[Seat]) -> list[Agent]:
    """One agent per seat: the instance itself (one seat), one per seat from a class or factory, or a list."""
    if isinstance(agent, Agent):
        if len(seats) != 1:
            raise ValueError("one Agent instance plays one seat: pass the class or a factory for several")
        return [agent]
    if isinstance(agent, Sequence) and not isinstance(agent, (str, bytes)):
        if len(agent) != len(seats):
            raise ValueError(f"{len(agent)} agents for {len(seats)} seats")
        return list(agent)
    if callable(agent):
        return [agent() for _ in seats]
    raise TypeError(f"not an agent, agent class or factory: {agent!r}")


def _seats(seats: Iterable[Seat | tuple[str, str, str]]) -> list[Seat]:
    out = [s if isinstance(s, Seat) else Seat(*s) for s in seats]
    keys = {(s.session_id, s.party) for s in out}
    if len(keys) != len(out):
        raise ValueError("a seat is listed twice")
    return out


def play(
    agent: AgentSource,
    seats: Iterable[Seat | tuple[str, str, str]],
    address: str,
    *,
    ca: str | Path | None = None,
) -> dict[Seat, SeatResult]:
    """Plays every seat over one ``Negotiate`` stream until each has ended; returns how each ended.

    ``agent`` is an :class:`Agent` (one seat), an Agent class or zero-argument
    factory (one new agent per seat) or a list of agents, one per seat.
    ``seats`` are :class:`Seat`\\ s (session id, party, token), e.g.
    ``created.seats()``. A refused join (wrong token, unknown session) ends
    only that seat, with its ``error``; a dropped stream ends every seat
    still playing with a :class:`NegotiumError`.
    """
    import grpc

    from negotium._channel import sync_channel
    from negotium.v1 import negotiation_pb2_grpc as pb_grpc

    seat_list = _seats(seats)
    drivers = [SeatDriver(a, s) for a, s in zip(make_agents(agent, seat_list), seat_list)]
    if not drivers:
        return {}
    channel = sync_channel(address, ca)
    outbox: queue.Queue[Any] = queue.Queue()
    closed = object()

    def requests() -> Iterable[Any]:
        while True:
            m = outbox.get()
            if m is closed:
                return
            yield m

    router = Router()
    for d in drivers:
        router.add(d.seat, d)
        outbox.put(join_message(d.seat))
    live = len(drivers)
    call = pb_grpc.NegotiationStub(channel).Negotiate(requests())
    try:
        for msg in call:
            for d in router.targets(msg):
                for reply in d.handle(msg):
                    outbox.put(reply)
                if d.done:
                    router.remove(d.seat)
                    live -= 1
            if live == 0:
                break
        else:
            _stream_lost(drivers, NegotiumError("UNAVAILABLE", "the server closed the agent stream"))
    except grpc.RpcError as e:
        _stream_lost(drivers, NegotiumError.from_rpc(e))
    finally:
        outbox.put(closed)
        call.cancel()
        channel.close()
    return {d.seat: SeatResult.of(d) for d in drivers}


def _stream_lost(drivers: list[SeatDriver], err: NegotiumError) -> None:
    for d in drivers:
        if not d.done:
            d.refused = err
