"""Pre-trade risk limits and the daily-loss kill switch.

``RiskGate.check_order`` runs before every order reaches the paper broker and returns the reason
for a rejection (or None). ``RiskGate.check_equity`` returns a reason to halt the robot when the
day's loss passes its limit. Imports only the standard library.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from robohost.domain.values import NS_PER_MINUTE


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Limits checked before every order; ``None`` switches a limit off."""

    max_position: float | None = None  # absolute quantity per symbol
    max_position_notional: float | None = None  # absolute market value per symbol
    max_gross_exposure: float | None = None  # sum of absolute market values
    max_order_notional: float | None = None
    max_orders_per_minute: int | None = None
    max_daily_loss: float | None = None  # currency; a breach halts the robot


class RiskGate:
    """Stateful checks: the order rate window and the day's starting equity."""

    def __init__(self, limits: RiskLimits) -> None:
        self.limits = limits
        self._recent: deque[int] = deque()
        self.day_start_equity: float | None = None

    def check_order(
        self,
        ts: int,
        signed_qty: float,
        price: float,
        position_after: float,
        gross_exposure: float,
        position_now: float,
    ) -> tuple[str, str] | None:
        """Return (rule, reason) when the order breaks a limit, else None; count accepted orders.

        ``position_after`` is the symbol's position if this and every working order filled.
        """
        lim = self.limits
        notional = abs(signed_qty) * price
        if lim.max_order_notional is not None and notional > lim.max_order_notional:
            return (
                "max_order_notional",
                f"order notional {notional:,.2f} exceeds {lim.max_order_notional:,.2f}",
            )
        increases = abs(position_after) > abs(position_now)
        if increases and lim.max_position is not None and abs(position_after) > lim.max_position:
            return (
                "max_position",
                f"position would reach {abs(position_after):g} (limit {lim.max_position:g})",
            )
        if (
            increases
            and lim.max_position_notional is not None
            and abs(position_after) * price > lim.max_position_notional
        ):
            value = abs(position_after) * price
            return (
                "max_position_notional",
                f"position value would reach {value:,.2f} (limit {lim.max_position_notional:,.2f})",
            )
        if increases and lim.max_gross_exposure is not None:
            added = (abs(position_after) - abs(position_now)) * price
            if gross_exposure + added > lim.max_gross_exposure:
                return (
                    "max_gross_exposure",
                    f"gross exposure would reach {gross_exposure + added:,.2f} (limit {lim.max_gross_exposure:,.2f})",
                )
        if lim.max_orders_per_minute is not None:
            window = self._recent
            while window and window[0] <= ts - NS_PER_MINUTE:
                window.popleft()
            if len(window) >= lim.max_orders_per_minute:
                return "max_orders_per_minute", f"more than {lim.max_orders_per_minute} orders in a minute"
            window.append(ts)
        return None

    def start_day(self, equity: float) -> None:
        """Remember the equity at the start of a trading day."""
        self.day_start_equity = equity

    def check_equity(self, equity: float) -> tuple[str, str] | None:
        """Return (rule, reason) when the day's loss breaks ``max_daily_loss``, else None."""
        limit = self.limits.max_daily_loss
        start = self.day_start_equity
        if limit is None or start is None:
            return None
        loss = start - equity
        if loss > limit:
            return "max_daily_loss", f"daily loss {loss:,.2f} exceeds {limit:,.2f}: kill switch set"
        return None
