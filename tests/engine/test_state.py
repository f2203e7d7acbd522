"""Checkpoints of the engine state: the context and logger are stored by name and re-attached wherever the
state holds them, and checkpoints written before (with pickle's persistent ids) still restore."""

from __future__ import annotations

import io
import logging
import pickle
from decimal import Decimal
from typing import Any

from robohost.domain.fill_model import FillRules
from robohost.domain.portfolio import Portfolio
from robohost.domain.risk import RiskGate, RiskLimits
from robohost.engine.paper_broker import PaperBroker
from robohost.engine.state import EngineState, freeze, thaw
from robohost.engine.strategy import Context, Strategy


class Keeper(Strategy):
    """A robot that keeps references to its context and loggers (robots do)."""


def state_holding(ctx: Context, log: logging.Logger) -> EngineState:
    portfolio = Portfolio(Decimal(1000))
    broker = PaperBroker("run", FillRules(), portfolio, 7)
    state = EngineState(["AAA"], portfolio, broker, RiskGate(RiskLimits()), Keeper(), 5)
    keeper: Any = state.strategy
    keeper.ctx, keeper.log, keeper.pair = ctx, log, (ctx, log)
    keeper.other = logging.getLogger("test.state.other")  # a logger that is not an external: pickled by name
    return state


def test_externals_are_stored_by_name_and_re_attached_wherever_they_are_held() -> None:
    log = logging.getLogger("test.state")
    ctx = Context(lambda: 1, log)  # a closure: it could not be pickled by value
    saved = freeze(state_holding(ctx, log), {"ctx": ctx, "log": log})
    later = Context(lambda: 2, log)
    restored: Any = thaw(saved, {"ctx": later, "log": log}).strategy
    assert restored.ctx is later and restored.pair[0] is later and restored.log is log and restored.pair[1] is log
    assert restored.other is logging.getLogger("test.state.other")


def test_a_checkpoint_written_with_persistent_ids_still_restores() -> None:
    log = logging.getLogger("test.state")
    ctx = Context(lambda: 0, log)
    names = {id(ctx): "ctx", id(log): "log"}

    class OldPickler(pickle.Pickler):  # how freeze wrote checkpoints before
        def persistent_id(self, obj: Any) -> str | None:
            return names.get(id(obj))

    buf = io.BytesIO()
    OldPickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(state_holding(ctx, log))
    later = Context(lambda: 1, log)
    restored: Any = thaw(buf.getvalue(), {"ctx": later, "log": log}).strategy
    assert restored.ctx is later and restored.log is log
