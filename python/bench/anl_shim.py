"""Import anl-agents' classes one module at a time, without the package's ``__init__`` files.

``import anl_agents`` runs ``anl_agents/agents.py``, which imports every ANL
2024 and 2025 agent, some of them needing torch, tensorflow or xgboost; and
each year's and team's ``__init__`` star-imports all of its agents. So
without those heavy dependencies *no* agent of the package imports the
ordinary way. This module registers every package directory of
``anl_agents`` as an empty package (its ``__path__`` set, its ``__init__``
not run), so that each agent's own module imports, or fails, on its own.

An agent is then named to negotium's host as ``anl_shim:YEAR__TEAM__MODULE__Class``
(``__`` for the dots: the host reads ``module:Attr.Attr`` as nested
attributes), e.g. ``anl_shim:anl2024__tulsa_eulers__goldie__Goldie``.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import types
from pathlib import Path

ROOT = "anl_agents"


def _install() -> Path:
    spec = importlib.util.find_spec(ROOT)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("anl_agents is not installed")
    base = Path(list(spec.submodule_search_locations)[0])
    for init in sorted(base.rglob("__init__.py"), key=lambda p: len(p.parts)):
        rel = init.parent.relative_to(base.parent).parts
        name = ".".join(rel)
        if "__pycache__" in rel or name in sys.modules:
            continue
        m = types.ModuleType(name)
        m.__path__ = [str(init.parent)]
        m.__file__ = str(init)
        m.__package__ = name
        m.__spec__ = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(init.parent)])
        sys.modules[name] = m
        if "." in name:
            parent, _, leaf = name.rpartition(".")
            setattr(sys.modules[parent], leaf, m)
    return base


BASE = _install()


def __getattr__(attr: str):
    if "__" not in attr or attr.startswith("_"):
        raise AttributeError(attr)
    *mod, cls = attr.split("__")
    module = importlib.import_module(".".join([ROOT, *mod]))
    return getattr(module, cls)


def discover() -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """({name: host spec} of SAONegotiator classes, {module: import error}, {name: why not played})."""
    from negmas.sao import SAONegotiator

    agents: dict[str, str] = {}
    broken: dict[str, str] = {}
    other: dict[str, str] = {}
    mods = sorted(
        ".".join(p.relative_to(BASE.parent).with_suffix("").parts)
        for p in BASE.rglob("*.py")
        if p.name != "__init__.py" and "__pycache__" not in p.parts
    )
    for name in mods:
        if name in (f"{ROOT}.__main__", f"{ROOT}.agents", f"{ROOT}.registry"):
            continue
        try:
            mod = importlib.import_module(name)
        except BaseException as e:  # noqa: BLE001 - ImportError, SystemExit, anything
            broken[name] = f"{type(e).__name__}: {e}"[:200]
            continue
        for cname, cls in vars(mod).items():
            if cname.startswith("_") or not inspect.isclass(cls) or cls.__module__ != name:
                continue
            label = f"{name.removeprefix(ROOT + '.')}.{cname}"
            if issubclass(cls, SAONegotiator):
                if inspect.isabstract(cls):
                    continue
                agents[label] = "anl_shim:" + "__".join(name.split(".")[1:] + [cname])
            elif any(b.__name__.endswith("Negotiator") for b in cls.__mro__[1:]):
                other[label] = "not an SAONegotiator (" + ", ".join(b.__name__ for b in cls.__mro__[1:3]) + ")"
    return dict(sorted(agents.items(), key=lambda kv: kv[0].lower())), broken, other
