"""A client of a negotium server's management API (``negotium serve``).

    from negotium import Client

    with Client("127.0.0.1:7000") as c:
        s = c.create_session(open("scenario.toml").read(), seed=7)
        # s.tokens: {party: token} for the scenario's external parties
        for event in c.watch(s.session_id):
            print(event)           # ActionEvent ..., then the Result

Every refused or failed call raises :class:`~negotium.errors.NegotiumError`
with the gRPC status code and the server's message (which names the limit
or field at fault). Management calls carry the admin token, where one is
given, as ``authorization: Bearer <token>`` (README "Security"); a server on
127.0.0.1 needs none.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Union

import grpc

from negotium._channel import parse_address, sync_channel
from negotium._pb import pb
from negotium.v1 import negotiation_pb2_grpc as pb_grpc
from negotium.errors import NegotiumError
from negotium.types import ActionEvent, CreatedSession, Result, SessionInfo

Strategies = Union[Mapping[str, str], Iterable[tuple[str, str]], None]


def scenario_text(scenario: str | os.PathLike[str]) -> str:
    """A scenario's TOML text: a ``Path`` is read, a ``str`` is the text itself."""
    if isinstance(scenario, os.PathLike):
        return Path(scenario).read_text()
    return scenario


def create_request(
    scenario_toml: str | os.PathLike[str],
    seed: int | None,
    join_timeout: float | None,
    first_party: str | None,
    strategies: Strategies,
) -> Any:
    pairs: list[tuple[str, str]] = []
    if strategies is not None:
        items = strategies.items() if isinstance(strategies, Mapping) else strategies
        pairs = [(str(p), str(s)) for p, s in items]
    return pb.CreateSessionRequest(
        scenario_toml=scenario_text(scenario_toml),
        seed=seed or 0,
        has_seed=seed is not None,
        join_timeout_seconds=join_timeout or 0.0,
        first_party=first_party or "",
        strategies=[pb.PartyStrategy(party=p, strategy=s) for p, s in pairs],
    )


def created(r: Any) -> CreatedSession:
    return CreatedSession(r.session_id, {t.party: t.token for t in r.tokens}, r.owner_token)


class Client:
    """A connection to one negotium server.

    ``address`` is ``HOST:PORT`` or ``http://HOST:PORT`` (``https://`` for
    TLS, with ``ca`` the PEM file of the authority where it is not a public
    one). ``admin_token`` is sent with every management call. ``timeout``
    bounds each unary call, in seconds.
    """

    def __init__(
        self,
        address: str,
        admin_token: str | None = None,
        *,
        timeout: float | None = 30.0,
        ca: str | Path | None = None,
    ) -> None:
        self.address = parse_address(address)[0]
        self.admin_token = admin_token
        self.timeout = timeout
        self.channel = sync_channel(address, ca)
        self.stub = pb_grpc.NegotiationStub(self.channel)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.channel.close()

    def _metadata(self, token: str | None = None) -> list[tuple[str, str]]:
        t = token or self.admin_token
        return [("authorization", f"Bearer {t}")] if t else []

    def create_session(
        self,
        scenario_toml: str | os.PathLike[str],
        seed: int | None = None,
        join_timeout: float | None = None,
        first_party: str | None = None,
        strategies: Strategies = None,
    ) -> CreatedSession:
        """Creates a session from a scenario (TOML text, or a ``Path`` to a file).

        ``seed`` replaces the scenario's seed; ``join_timeout`` is how long
        the server waits for every external party to join (seconds; server
        default where ``None``); ``first_party`` names the party that opens
        (the others keep their order after it); ``strategies`` replaces the
        strategies of local (non-external) parties: ``{party: strategy}``
        with a strategy written as in a scenario file (``"boulware"`` or
        ``'{ type = "time-dependent", e = 0.5 }'``).
        """
        req = create_request(scenario_toml, seed, join_timeout, first_party, strategies)
        try:
            r = self.stub.CreateSession(req, metadata=self._metadata(), timeout=self.timeout)
        except grpc.RpcError as e:
            raise NegotiumError.from_rpc(e) from None
        return created(r)

    def list_sessions(self, page_size: int = 0) -> list[SessionInfo]:
        """Every session the server keeps, in id order (fetched a page at a time)."""
        out: list[SessionInfo] = []
        token = ""
        while True:
            try:
                r = self.stub.ListSessions(
                    pb.ListSessionsRequest(page_size=page_size, page_token=token),
                    metadata=self._metadata(),
                    timeout=self.timeout,
                )
            except grpc.RpcError as e:
                raise NegotiumError.from_rpc(e) from None
            out.extend(SessionInfo.from_pb(s) for s in r.sessions)
            if not r.next_page_token:
                return out
            token = r.next_page_token

    def watch(self, session_id: str) -> Iterator[ActionEvent | Result]:
        """Every action of the session as it happens (:class:`ActionEvent`), then its :class:`Result`."""
        call = self.stub.WatchSession(pb.WatchSessionRequest(session_id=session_id), metadata=self._metadata())
        try:
            for ev in call:
                kind = ev.WhichOneof("kind")
                if kind == "action":
                    yield ActionEvent.from_pb(ev.action)
                elif kind == "finished":
                    yield Result.from_pb(ev.finished)
                    return
        except grpc.RpcError as e:
            raise NegotiumError.from_rpc(e) from None
        finally:
            call.cancel()

    def result(self, session_id: str) -> Result:
        """The result of a finished session (NOT_FOUND, or FAILED_PRECONDITION while it runs)."""
        try:
            r = self.stub.GetResult(
                pb.GetResultRequest(session_id=session_id), metadata=self._metadata(), timeout=self.timeout
            )
        except grpc.RpcError as e:
            raise NegotiumError.from_rpc(e) from None
        return Result.from_pb(r)

    def cancel(self, session_id: str, owner_token: str | None = None) -> None:
        """Ends a running session at once (``ended_by`` "aborted"): with its owner token or the admin token."""
        try:
            self.stub.CancelSession(
                pb.CancelSessionRequest(session_id=session_id, owner_token=owner_token or ""),
                metadata=self._metadata(),
                timeout=self.timeout,
            )
        except grpc.RpcError as e:
            raise NegotiumError.from_rpc(e) from None
