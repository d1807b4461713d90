"""Errors of the negotium client and agent runtime."""

from __future__ import annotations

from typing import Any


class NegotiumError(Exception):
    """A call the server refused or could not complete.

    ``code`` is the gRPC status code name (``"INVALID_ARGUMENT"``,
    ``"NOT_FOUND"``, ``"UNAVAILABLE"``, ...) and ``message`` the server's
    reason, which names the limit or field at fault. Errors on the agent
    stream (``Error`` messages: ``"unauthenticated"``, ``"not-found"``, ...)
    use the stream's own lower-case code.
    """

    def __init__(self, code: str, message: str, *, session_id: str = "", party: str = "") -> None:
        self.code = code
        self.message = message
        self.session_id = session_id
        self.party = party
        where = f" (session {session_id}" + (f", party {party})" if party else ")") if session_id else ""
        super().__init__(f"{code}: {message}{where}")

    @classmethod
    def from_rpc(cls, e: Any) -> NegotiumError:
        """From a ``grpc.RpcError`` (sync or aio)."""
        try:
            code = e.code().name
            details = e.details() or ""
        except Exception:  # pragma: no cover - an RpcError without status
            code, details = "UNKNOWN", str(e)
        return cls(code, details)


class AgentFailure(Exception):
    """An agent that broke its seat: it raised, answered nonsense, hung or died.

    ``reason`` is what the host sends in ``Leave`` and what the record's
    violation then says, e.g. ``agent HardHeaded raised ValueError: ...``.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)
