"""negotium for Python: client, agents, utility functions, NegMAS adapter and agent host.

* :class:`Client` (and :class:`negotium.aio.AsyncClient`): create, list,
  watch, fetch and cancel sessions on a ``negotium serve`` node.
* :class:`Agent` and :func:`play` (and :func:`negotium.aio.play`): an agent
  is a class with ``propose`` and ``respond``; ``play`` plays many seats of
  many sessions over one agent stream.
* :mod:`negotium.utility`: the domain and the party's own utility function,
  evaluated with exactly the server's floats.
* :mod:`negotium.negmas_adapter`: any NegMAS ``SAONegotiator`` in a seat.
* :mod:`negotium.host` (``negotium-agents``): many seats in one host, each
  agent in its own process behind a hard per-call deadline.
"""

from typing import Any

from negotium.agent import Agent, SeatDriver, SeatResult, play
from negotium.errors import AgentFailure, NegotiumError
from negotium.types import (
    Action,
    ActionEvent,
    CreatedSession,
    Response,
    Result,
    Seat,
    Session,
    SessionInfo,
    State,
    Violation,
)
from negotium.utility import Domain, Issue, Outcome, OutcomeError, UtilityFunction, ValueFunction

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # The client imports grpc; the host's forking workers import this package
    # and must not load the gRPC runtime, so it is imported on first use.
    if name == "Client":
        from negotium.client import Client

        return Client
    raise AttributeError(f"module 'negotium' has no attribute {name!r}")


__all__ = [
    "Action",
    "ActionEvent",
    "Agent",
    "AgentFailure",
    "Client",
    "CreatedSession",
    "Domain",
    "Issue",
    "NegotiumError",
    "Outcome",
    "OutcomeError",
    "Response",
    "Result",
    "Seat",
    "SeatDriver",
    "SeatResult",
    "Session",
    "SessionInfo",
    "State",
    "UtilityFunction",
    "ValueFunction",
    "Violation",
    "play",
]
