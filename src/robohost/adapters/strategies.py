"""Load a user's robot: a ``Strategy`` subclass from a file path or an importable module.

Forms: ``strategies/sma_cross.py:SmaCross`` (relative to the robot home), ``strategies/x.py``
(its one Strategy subclass), or ``package.module:Class``. A file is imported under a stable module
name, so a checkpointed strategy object unpickles in a new process. Must not import config or cli.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType

from robohost.engine.strategy import Strategy
from robohost.errors import StrategyError


def _module_from_file(file: Path, ref: str) -> ModuleType:
    if not file.is_file():
        raise StrategyError(f"strategy {ref!r}: file {file} not found")
    digest = hashlib.sha256(str(file.resolve()).encode()).hexdigest()[:12]
    name = f"robohost_robot_{file.stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise StrategyError(f"strategy {ref!r}: {file} cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise StrategyError(f"strategy {ref!r}: importing {file} failed: {exc!r}") from exc
    return module


def load_strategy_class(ref: str, home: Path) -> type[Strategy]:
    """Return the Strategy subclass that ``ref`` names; a ``StrategyError`` says what is wrong."""
    target, _, class_name = ref.partition(":")
    if target.endswith(".py") or "/" in target:
        module = _module_from_file(home / target, ref)
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise StrategyError(f"strategy {ref!r}: module {target!r} cannot be imported: {exc}") from exc
    if class_name:
        cls = getattr(module, class_name, None)
        if cls is None:
            raise StrategyError(f"strategy {ref!r}: {target} defines no {class_name!r}")
    else:
        found = [
            c
            for c in vars(module).values()
            if inspect.isclass(c) and issubclass(c, Strategy) and c is not Strategy and c.__module__ == module.__name__
        ]
        if len(found) != 1:
            names = ", ".join(c.__name__ for c in found) or "none"
            raise StrategyError(f"strategy {ref!r}: name the class as 'file.py:Class' (Strategy classes: {names})")
        cls = found[0]
    if not (inspect.isclass(cls) and issubclass(cls, Strategy)):
        raise StrategyError(f"strategy {ref!r}: {class_name} is not a robohost.Strategy subclass")
    return cls
