"""SMA crossover: long when the fast average crosses above the slow one, flat when it crosses below.

The example robot of ``robohost init --example sma-cross``. Edit it, or write your own next to it.
"""

from __future__ import annotations

from robohost import Bar, Context, Strategy


class SmaCross(Strategy):
    """Buy ``qty`` on a golden cross, close on a death cross; one position per symbol."""

    params = {"fast": 10, "slow": 30, "qty": 100}

    def on_start(self, ctx: Context) -> None:
        """Create the two moving averages of every symbol."""
        self.fast = {s: ctx.sma(s, self.params.fast) for s in ctx.symbols}
        self.slow = {s: ctx.sma(s, self.params.slow) for s in ctx.symbols}
        self.above: dict[str, bool | None] = dict.fromkeys(ctx.symbols)

    def on_bar(self, bar: Bar, ctx: Context) -> None:
        """Trade the crossings of the fast average through the slow one."""
        symbol = bar.symbol
        slow = self.slow[symbol]
        if not slow.ready:
            return
        fast = self.fast[symbol].value
        if fast == slow.value:
            return  # touching is not crossing: wait for one side to win
        above = fast > slow.value
        was = self.above[symbol]
        self.above[symbol] = above
        if was is None or above == was:
            return
        if above and ctx.position(symbol) == 0:
            ctx.buy(symbol, self.params.qty)
        elif not above and ctx.position(symbol) > 0:
            ctx.close(symbol)
