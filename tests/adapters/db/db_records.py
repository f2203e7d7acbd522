"""Builders of valid engine records for the database adapter tests (imported by tests and conftest)."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

from robohost.engine.records import (
    Batch,
    Checkpoint,
    EventRecord,
    FillRecord,
    OrderRecord,
    PositionRecord,
    RejectedDataRecord,
    RiskEventRecord,
    RunRecord,
)

T0 = 1_700_000_000_000_000_000  # ns


class Records:
    """Valid records of one run; keyword arguments override any field."""

    def __init__(self, run_id: str = "run-1", robot: str = "bot", started_at: int = T0) -> None:
        self.run_id = run_id
        self.robot = robot
        self.started_at = started_at

    def run(self, **kw: Any) -> RunRecord:
        base = RunRecord(
            id=self.run_id,
            robot=self.robot,
            mode="replay",
            started_at=self.started_at,
            seed=42,
            starting_cash=Decimal("100000.00"),
            strategy="strategies/sma_cross.py:SmaCross",
            feed_signature="replay:sha256:abc",
            config={"symbols": ["BTC/USDT"], "risk": {"max_position": 1.5}},
        )
        return dataclasses.replace(base, **kw)

    def order(self, id: str = "o-1", **kw: Any) -> OrderRecord:
        base = OrderRecord(
            id=id,
            run_id=self.run_id,
            robot=self.robot,
            symbol="BTC/USDT",
            side="buy",
            type="limit",
            qty=0.5,
            limit_price=30_000.25,
            stop_price=None,
            tif="gtc",
            status="new",
            filled_qty=0.0,
            avg_fill_price=None,
            fees=Decimal("0"),
            created_ts=T0 + 1,
            updated_ts=T0 + 1,
            parent_id=None,
            oco_id=None,
            reason="",
        )
        return dataclasses.replace(base, **kw)

    def fill(self, id: str = "f-1", **kw: Any) -> FillRecord:
        base = FillRecord(
            id=id,
            run_id=self.run_id,
            robot=self.robot,
            order_id="o-1",
            symbol="BTC/USDT",
            side="buy",
            qty=0.5,
            price=30_000.25,
            fee=Decimal("15.000125"),
            ts=T0 + 2,
            liquidity="maker",
            tier="bar",
            ambiguous=False,
            realized_pnl=Decimal("0"),
        )
        return dataclasses.replace(base, **kw)

    def position(self, symbol: str = "BTC/USDT", **kw: Any) -> PositionRecord:
        base = PositionRecord(
            run_id=self.run_id,
            robot=self.robot,
            symbol=symbol,
            qty=Decimal("0.5"),
            avg_price=Decimal("30000.25"),
            realized_pnl=Decimal("0"),
            last_price=30_010.0,
            updated_ts=T0 + 2,
        )
        return dataclasses.replace(base, **kw)

    def risk(self, **kw: Any) -> RiskEventRecord:
        base = RiskEventRecord(
            run_id=self.run_id,
            robot=self.robot,
            ts=T0 + 3,
            kind="rejected",
            rule="max_position",
            reason="position would exceed 1.5",
            order_id="o-2",
        )
        return dataclasses.replace(base, **kw)

    def rejected(self, **kw: Any) -> RejectedDataRecord:
        base = RejectedDataRecord(
            run_id=self.run_id,
            robot=self.robot,
            symbol="BTC/USDT",
            kind="bar",
            ts=T0 + 4,
            reason="high below low",
            values=(1.0, 0.5, 2.0, 1.5, 10.0),
        )
        return dataclasses.replace(base, **kw)

    def event(self, seq: int = 0, **kw: Any) -> EventRecord:
        base = EventRecord(run_id=self.run_id, seq=seq, ts=T0 + seq, type="order_submitted", data={"order_id": "o-1"})
        return dataclasses.replace(base, **kw)

    def checkpoint(self, seq: int = 0, **kw: Any) -> Checkpoint:
        base = Checkpoint(
            run_id=self.run_id,
            seq=seq,
            ts=T0 + seq,
            events_processed=seq + 1,
            rejected_count=0,
            state=b"state-%d" % seq,
        )
        return dataclasses.replace(base, **kw)

    def batch(self, **kw: Any) -> Batch:
        return Batch(run_id=self.run_id, **kw)
