"""The generated protobuf messages, imported in one place.

They are built with the package (``setup.py``); importing them from a
source checkout that was never built fails with the command that builds
them instead of a bare ``ModuleNotFoundError``. The gRPC stub module
(``pb_grpc``, which imports grpc) is imported only by the modules that open
channels, so that the host's worker processes, which fork, never load the
gRPC runtime.
"""

from __future__ import annotations

try:
    from negotium.v1 import negotiation_pb2 as pb
except ModuleNotFoundError as e:  # pragma: no cover - depends on how it was installed
    if e.name and e.name.startswith("negotium.v1.negotiation_pb2"):
        raise ImportError(
            "negotium's gRPC stubs (negotium/v1/negotiation_pb2*.py) are missing: they are "
            "generated when the package is built; install it with `pip install ./python` "
            "(or `pip install -e ./python` for development) from negotium's repository"
        ) from e
    raise

__all__ = ["pb"]
