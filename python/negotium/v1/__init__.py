"""negotium's public API, version 1 (proto package ``negotium.v1``).

``negotiation_pb2`` (messages) and ``negotiation_pb2_grpc`` (the
``Negotiation`` service stub) are generated from
``proto/negotium/v1/negotiation.proto`` when the package is built; see
``setup.py``.
"""
