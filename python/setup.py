"""Build hook: generates the gRPC stubs of negotium's public API at build time.

The API's contract is ``proto/negotium/v1/negotiation.proto`` in the
repository root (``../proto`` from here). Its proto package ``negotium.v1``
maps onto the Python package ``negotium.v1``, so ``grpc_tools.protoc`` run
with ``-I ../proto`` writes ``negotium/v1/negotiation_pb2.py`` and
``negotiation_pb2_grpc.py`` (and a ``.pyi`` for type checkers) exactly where
the package imports them from. They are generated, never committed: the
stubs always match the proto they were built from, and the grpcio-tools pin
in ``pyproject.toml`` fixes the generated code's version checks.

``NEGOTIUM_PROTO_DIR`` points the build at another copy of ``proto/``
(e.g. when building from an unpacked sdist away from the repository).
"""

from __future__ import annotations

import os
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
PROTO_FILE = "negotium/v1/negotiation.proto"
GENERATED = ("negotiation_pb2.py", "negotiation_pb2_grpc.py", "negotiation_pb2.pyi")


def proto_dir() -> Path:
    """The folder holding ``negotium/v1/negotiation.proto``."""
    candidates = []
    if os.environ.get("NEGOTIUM_PROTO_DIR"):
        candidates.append(Path(os.environ["NEGOTIUM_PROTO_DIR"]))
    candidates += [HERE.parent / "proto", HERE / "proto"]
    for c in candidates:
        if (c / PROTO_FILE).is_file():
            return c
    raise SystemExit(
        f"cannot find {PROTO_FILE}: looked in {', '.join(str(c) for c in candidates)}; "
        "build from negotium's repository (python/ next to proto/) or set NEGOTIUM_PROTO_DIR"
    )


def generate(out_dir: Path) -> None:
    """Runs protoc (from grpcio-tools) on the API's proto into ``out_dir``."""
    from grpc_tools import protoc  # a build requirement (pyproject.toml)
    import importlib.resources

    src = proto_dir()
    # protoc needs the well-known types' .proto files, shipped inside grpc_tools.
    well_known = str(importlib.resources.files("grpc_tools") / "_proto")
    out_dir.mkdir(parents=True, exist_ok=True)
    args = [
        "grpc_tools.protoc",
        f"-I{src}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        str(src / PROTO_FILE),
    ]
    if protoc.main(args) != 0:
        raise SystemExit(f"protoc failed on {src / PROTO_FILE}")
    for name in GENERATED:
        if not (out_dir / "negotium" / "v1" / name).is_file():
            raise SystemExit(f"protoc did not write negotium/v1/{name}")


class BuildPyWithStubs(build_py):
    """``build_py`` that also writes the generated stubs.

    A regular build writes them into the build folder (they land in the
    wheel); an editable install (``pip install -e``) writes them into the
    source tree, where the package is imported from (they are gitignored).
    """

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            generate(HERE)
        else:
            generate(Path(self.build_lib))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = list(super().get_outputs(include_bytecode))
        if not getattr(self, "editable_mode", False):
            outputs += [str(Path(self.build_lib) / "negotium" / "v1" / n) for n in GENERATED]
        return outputs


setup(cmdclass={"build_py": BuildPyWithStubs})
