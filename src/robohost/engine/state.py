"""The engine state of one run and its checkpoint form.

Everything a run needs to continue after a crash lives in ``EngineState``: the portfolio, the
paper broker (orders, random source), the risk gate, the strategy object with its indicators,
the bar histories and the positions in the event stream. ``freeze``/``thaw`` turn it into bytes
and back; the context and the logger are re-attached rather than stored. No I/O.
"""

from __future__ import annotations

import copyreg
import io
import pickle
from collections.abc import Sequence
from typing import Any

from robohost.domain.indicators import Indicator
from robohost.domain.portfolio import Portfolio
from robohost.domain.risk import RiskGate
from robohost.engine.history import BarHistory, SeqHistory
from robohost.engine.paper_broker import PaperBroker
from robohost.engine.strategy import Strategy
from robohost.errors import StateError, StrategyError


class EngineState:
    """All mutable state of a run."""

    def __init__(
        self,
        symbols: Sequence[str],
        portfolio: Portfolio,
        broker: PaperBroker,
        risk: RiskGate,
        strategy: Strategy,
        history_size: int,
        history_by_seq: bool = False,
    ) -> None:
        self.symbols = list(symbols)
        self.index = {s: i for i, s in enumerate(self.symbols)}
        self.portfolio = portfolio
        self.broker = broker
        self.risk = risk
        self.strategy = strategy
        self.indicators: list[list[Indicator]] = [[] for _ in self.symbols]
        kind = SeqHistory if history_by_seq else BarHistory
        self.histories: list[BarHistory | SeqHistory | None] = [
            kind(history_size) if history_size > 0 else None for _ in self.symbols
        ]
        self.last_ts: list[list[int]] = [[-1] * len(self.symbols) for _ in range(3)]  # per kind, per symbol
        self.last_price: list[float] = [0.0] * len(self.symbols)
        self.seq = -1  # last market event fully processed
        self.events_processed = 0
        self.rejected_count = 0
        self.started = False
        self.halted: str | None = None
        self.day_end = -1
        self.equity_point: tuple[int, float, float] | None = None  # the latest, not yet in a batch
        self.peak_equity = float(portfolio.starting_cash)
        self.max_drawdown = 0.0  # largest fall from a peak, as a fraction of the peak

    def symbol_index(self, symbol: str) -> int:
        """Index of ``symbol`` in the feed, or a ``StrategyError`` naming the known symbols."""
        try:
            return self.index[symbol]
        except KeyError:
            known = ", ".join(self.symbols)
            raise StrategyError(f"unknown symbol {symbol!r}: this robot trades {known}") from None

    def history_of(self, symbol: str) -> BarHistory | SeqHistory:
        """The bar history of ``symbol``; a ``StrategyError`` if history is switched off."""
        hist = self.histories[self.symbol_index(symbol)]
        if hist is None:
            raise StrategyError("ctx.history needs bar history: set 'history' above 0 in the robot's config")
        return hist


def _external(name: str) -> Any:
    """Stands for the external object ``name`` in a checkpoint; ``thaw`` resolves it to the live object."""
    raise StateError(f"the checkpoint refers to {name!r}, which only thaw can re-attach")


class _Pickler(pickle.Pickler):
    """Pickles the externals as ``_external(name)``.

    A reducer in the dispatch table of the externals' exact types finds them: the C pickler looks a type up
    there without calling Python, whereas ``persistent_id`` would be a Python call for every object (two
    thirds of the time of a checkpoint, which a live run takes after every bar).
    """

    def __init__(self, buf: io.BytesIO, externals: dict[str, Any]) -> None:
        names = {id(obj): name for name, obj in externals.items()}
        protocol = pickle.HIGHEST_PROTOCOL

        def reduce(obj: Any) -> Any:
            name = names.get(id(obj))
            return obj.__reduce_ex__(protocol) if name is None else (_external, (name,))

        table = dict(copyreg.dispatch_table)
        table.update({type(obj): reduce for obj in externals.values()})
        self.dispatch_table = table  # read by the C pickler's __init__, so set first
        super().__init__(buf, protocol=protocol)


class _Unpickler(pickle.Unpickler):
    def __init__(self, buf: io.BytesIO, externals: dict[str, Any]) -> None:
        super().__init__(buf)
        self._externals = externals

    def find_class(self, module: str, name: str) -> Any:
        if module == __name__ and name == "_external":
            return self._externals.__getitem__
        return super().find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:  # checkpoints written before externals were _external(name)
        return self._externals[pid]


def freeze(state: EngineState, externals: dict[str, Any]) -> bytes:
    """Serialise ``state``; objects in ``externals`` (name -> object, of classes that pickle through their
    ``__reduce_ex__``, not built-in containers or scalars) are stored by name only."""
    buf = io.BytesIO()
    try:
        _Pickler(buf, externals).dump(state)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise StrategyError(
            f"the robot's state cannot be saved for crash recovery ({exc}); keep only plain data, "
            "numbers, numpy arrays and indicators on the strategy object"
        ) from exc
    return buf.getvalue()


def thaw(data: bytes, externals: dict[str, Any]) -> EngineState:
    """Restore a state saved by ``freeze``, re-attaching ``externals`` by name."""
    try:
        state = _Unpickler(io.BytesIO(data), externals).load()
    except (pickle.UnpicklingError, AttributeError, ModuleNotFoundError, EOFError) as exc:
        raise StateError(f"the run's checkpoint cannot be restored ({exc}); start a new run with --new") from exc
    if not isinstance(state, EngineState):
        raise StateError("the run's checkpoint does not hold an engine state; start a new run with --new")
    return state
