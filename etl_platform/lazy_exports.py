"""Package namespaces that import their members on first use (PEP 562).

Importing a module inside a package runs the package's ``__init__`` first. The component and
resource packages export Dagster classes, so an eager ``__init__`` made every module under them
import Dagster (~100 MB of RSS): the lake's day export, which moves data and needs none of it,
among them. ``dir()`` still lists every export, so ``dg`` finds the components of a registry
module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package`` whose name ``n`` is
    ``exports[n]``'s attribute ``n`` (a module path relative to ``package``, e.g. ``.checks``)."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(module, package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
