"""The asyncio side of negotium: :class:`AsyncClient` and :func:`play` on ``grpc.aio``.

Same calls and semantics as :mod:`negotium.client` and
:func:`negotium.agent.play`, for programs that already run an event loop.
Agents are the same :class:`~negotium.agent.Agent` classes; any of their
methods may also be ``async def`` (its result is awaited), so an agent can
await I/O while it thinks. Synchronous agent code runs in the event loop,
as it would in any asyncio program: keep it short, or host the agent with
``negotium-agents`` instead.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import grpc
import grpc.aio

from negotium._channel import channel_options, parse_address, tls_credentials
from negotium._pb import pb
from negotium.v1 import negotiation_pb2_grpc as pb_grpc
from negotium.agent import (
    AgentSource,
    Router,
    SeatDriver,
    SeatResult,
    _seats,
    join_message,
    make_agents,
)
from negotium.client import Strategies, create_request, created
from negotium.errors import NegotiumError
from negotium.types import ActionEvent, CreatedSession, Result, Seat, SessionInfo


def aio_channel(address: str, ca: str | Path | None = None) -> grpc.aio.Channel:
    target, tls = parse_address(address)
    if tls:
        return grpc.aio.secure_channel(target, tls_credentials(ca), options=channel_options())
    return grpc.aio.insecure_channel(target, options=channel_options())


class AsyncClient:
    """:class:`negotium.Client` for asyncio: the same methods, awaited (``watch`` is an async iterator)."""

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
        self.channel = aio_channel(address, ca)
        self.stub = pb_grpc.NegotiationStub(self.channel)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.channel.close()

    def _metadata(self) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.admin_token}")] if self.admin_token else []

    async def create_session(
        self,
        scenario_toml: str | os.PathLike[str],
        seed: int | None = None,
        join_timeout: float | None = None,
        first_party: str | None = None,
        strategies: Strategies = None,
    ) -> CreatedSession:
        """See :meth:`negotium.Client.create_session`."""
        req = create_request(scenario_toml, seed, join_timeout, first_party, strategies)
        try:
            r = await self.stub.CreateSession(req, metadata=self._metadata(), timeout=self.timeout)
        except grpc.RpcError as e:
            raise NegotiumError.from_rpc(e) from None
        return created(r)

    async def list_sessions(self, page_size: int = 0) -> list[SessionInfo]:
        """Every session the server keeps, in id order (all pages)."""
        out: list[SessionInfo] = []
        token = ""
        while True:
            try:
                r = await self.stub.ListSessions(
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

    async def watch(self, session_id: str) -> AsyncIterator[ActionEvent | Result]:
        """Every action of the session as it happens, then its :class:`Result`."""
        call = self.stub.WatchSession(pb.WatchSessionRequest(session_id=session_id), metadata=self._metadata())
        try:
            async for ev in call:
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

    async def result(self, session_id: str) -> Result:
        try:
            r = await self.stub.GetResult(
                pb.GetResultRequest(session_id=session_id), metadata=self._metadata(), timeout=self.timeout
            )
        except grpc.RpcError as e:
            raise NegotiumError.from_rpc(e) from None
        return Result.from_pb(r)

    async def cancel(self, session_id: str, owner_token: str | None = None) -> None:
        try:
            await self.stub.CancelSession(
                pb.CancelSessionRequest(session_id=session_id, owner_token=owner_token or ""),
                metadata=self._metadata(),
                timeout=self.timeout,
            )
        except grpc.RpcError as e:
            raise NegotiumError.from_rpc(e) from None


async def handle(driver: SeatDriver, msg: Any) -> list[Any]:
    """:meth:`SeatDriver.handle` that also awaits agent methods written ``async def``."""
    gen = driver.steps(msg)
    try:
        call = next(gen)
        while True:
            fn, args = call
            try:
                value = fn(*args)
                if inspect.isawaitable(value):
                    value = await value
            except Exception as e:
                call = gen.throw(e)
            else:
                call = gen.send(value)
    except StopIteration as stop:
        return list(stop.value or [])


async def play(
    agent: AgentSource,
    seats: Iterable[Seat | tuple[str, str, str]],
    address: str,
    *,
    ca: str | Path | None = None,
) -> dict[Seat, SeatResult]:
    """:func:`negotium.play` on asyncio: every seat over one ``Negotiate`` stream."""
    seat_list = _seats(seats)
    drivers = [SeatDriver(a, s) for a, s in zip(make_agents(agent, seat_list), seat_list)]
    if not drivers:
        return {}
    router = Router()
    for d in drivers:
        router.add(d.seat, d)
    live = len(drivers)
    channel = aio_channel(address, ca)
    call = pb_grpc.NegotiationStub(channel).Negotiate()
    try:
        for d in drivers:
            await call.write(join_message(d.seat))
        async for msg in call:
            for d in router.targets(msg):
                for reply in await handle(d, msg):
                    await call.write(reply)
                if d.done:
                    router.remove(d.seat)
                    live -= 1
            if live == 0:
                break
        else:
            _lost(drivers, NegotiumError("UNAVAILABLE", "the server closed the agent stream"))
    except grpc.RpcError as e:
        _lost(drivers, NegotiumError.from_rpc(e))
    finally:
        call.cancel()
        await channel.close()
    return {d.seat: SeatResult.of(d) for d in drivers}


def _lost(drivers: list[SeatDriver], err: NegotiumError) -> None:
    for d in drivers:
        if not d.done:
            d.refused = err
