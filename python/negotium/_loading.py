"""Finding an agent class by name (``module:Class`` or ``module.Class``) and making agents of it.

Shared by the host (``negotium-agents play/serve/check``) and anyone who
names agents in configuration. Every failure is an :class:`AgentSpecError`
whose message says what to do about it (which package to pip install, which
names the module does have, which parameters the class takes), because the
person reading it is setting up a run, not debugging Python.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable
from typing import Any

from negotium.agent import Agent

# Top-level modules whose pip package has another name.
PIP_NAMES = {
    "negmas_genius_agents": "negmas-genius-agents",
    "anl_agents": "anl-agents",
    "negmas": "negmas",
    "yaml": "pyyaml",
    "sklearn": "scikit-learn",
}


class AgentSpecError(Exception):
    """An agent that cannot be made: missing module or class, not an agent, bad parameters."""


def split_spec(spec: str) -> tuple[str, str]:
    """``module:Class`` or ``module.Class`` -> (module, Class)."""
    s = spec.strip()
    if ":" in s:
        module, _, name = s.partition(":")
    elif "." in s:
        module, _, name = s.rpartition(".")
    else:
        raise AgentSpecError(f"`{spec}`: name an agent as module:Class or module.Class (e.g. negmas.sao:BoulwareTBNegotiator)")
    if not module or not name:
        raise AgentSpecError(f"`{spec}`: name an agent as module:Class or module.Class")
    return module, name


def import_module(module_name: str, spec: str | None = None) -> Any:
    """Imports ``module_name``; a missing module is an AgentSpecError naming what to pip install."""
    spec = spec or module_name
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        missing = (e.name or module_name).split(".")[0]
        pip = PIP_NAMES.get(missing, missing.replace("_", "-"))
        raise AgentSpecError(
            f"`{spec}`: no module named `{e.name or module_name}`; install it (pip install {pip}) "
            "or check the spelling"
        ) from None
    except Exception as e:
        raise AgentSpecError(f"`{spec}`: importing `{module_name}` failed: {type(e).__name__}: {e}") from None


def load_class(spec: str) -> type:
    """Imports the module and returns the class (or factory) it names."""
    module_name, attr = split_spec(spec)
    module = import_module(module_name, spec)
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(obj) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise AgentSpecError(f"`{spec}`: module `{module_name}` has no `{attr}`{hint}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise AgentSpecError(f"`{spec}` is a {type(obj).__name__}, not an agent class")
    return obj


def is_negmas_negotiator(cls: Any) -> bool:
    """Whether ``cls`` is a NegMAS negotiator class (checked without importing NegMAS unless it is loaded)."""
    if not inspect.isclass(cls):
        return False
    for base in inspect.getmro(cls):
        if base.__module__.startswith("negmas.") and base.__name__ in ("SAOPRNegotiator", "GBNegotiator", "Negotiator"):
            return True
    return False


def check_params(cls: Any, params: dict[str, Any]) -> None:
    """Refuses parameters the class's constructor does not take (before any agent is made)."""
    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()):
        return
    accepted = {n for n, p in sig.parameters.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise AgentSpecError(
            f"{cls.__name__} takes no parameter {', '.join(map(repr, unknown))}; "
            f"it takes {', '.join(sorted(accepted)) or 'none'}"
        )


def agent_factory(spec: str, params: dict[str, Any] | None = None, *, probe: bool = True) -> Callable[[], Agent]:
    """A zero-argument factory of :class:`Agent`\\ s for ``spec`` with ``params``.

    A :class:`negotium.Agent` subclass is called with ``params``; a NegMAS
    negotiator class is wrapped in :class:`negotium.negmas_adapter.NegMASAgent`
    (its ``params`` go to the negotiator). With ``probe`` the factory is
    checked by making one agent, so a bad parameter fails here rather than
    in a session.
    """
    params = dict(params or {})
    cls = load_class(spec)
    if is_negmas_negotiator(cls):
        from negotium.negmas_adapter import NegMASAgent

        check_params(cls, params)

        def make() -> Agent:
            return NegMASAgent(cls, params)

    elif inspect.isclass(cls) and issubclass(cls, Agent):
        check_params(cls, params)

        def make() -> Agent:
            return cls(**params)

    elif inspect.isclass(cls):
        raise AgentSpecError(
            f"`{spec}` is neither a negotium.Agent nor a NegMAS negotiator class (its bases: "
            f"{', '.join(b.__name__ for b in cls.__mro__[1:])})"
        )
    else:  # a factory function returning an Agent

        def make() -> Agent:
            a = cls(**params)
            if not isinstance(a, Agent):
                raise AgentSpecError(f"`{spec}` returned a {type(a).__name__}, not a negotium.Agent")
            return a

    if not probe:
        return make
    try:
        made = make()
    except AgentSpecError:
        raise
    except TypeError as e:
        raise AgentSpecError(f"`{spec}` with parameters {params}: {e}") from None
    except Exception as e:
        raise AgentSpecError(f"`{spec}` with parameters {params} raised {type(e).__name__}: {e}") from None
    validate = getattr(made, "validate", None)
    if callable(validate):
        try:
            validate()  # NegMASAgent: makes one negotiator with the parameters
        except TypeError as e:
            raise AgentSpecError(f"`{spec}` with parameters {params}: {e}") from None
        except Exception as e:
            raise AgentSpecError(f"`{spec}` with parameters {params} raised {type(e).__name__}: {e}") from None
    return make
