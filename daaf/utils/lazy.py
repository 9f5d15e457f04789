"""Lazy package exports (PEP 562): a package lists its public names; each module loads on first use.

``from daaf.evaluation import evaluate_rank`` then imports ``daaf.evaluation.metrics`` only, so
``import daaf.evaluation`` stays instant (``daaf --help`` imports every package) and packages
may import one another's modules without import cycles.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_exports(
    package: str, modules: dict[str, list[str]]
) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """``__all__``, ``__getattr__`` and ``__dir__`` for ``package``, from module -> its names.

    Module names are relative to ``package``, as a relative import without its first dot
    (``"metrics"``: ``package.metrics``; ``".config"``: the package's sibling ``config``); a name
    is imported from its module on first access and then kept on the package, so later look-ups
    are plain attribute reads.
    """
    home = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name not in home:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{home[name]}", package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(home))

    return sorted(home), __getattr__, __dir__
