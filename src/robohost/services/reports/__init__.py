"""Reports built from the trading database: a neutral model first (``document``), then renderers (HTML, PDF).

``pnl.pnl_report`` is the paper-trading P&L report behind ``robohost report pnl``: ``data`` gathers a run from
the read model, ``metrics`` computes every figure, ``forward`` compares the period with a backtest,
``operations`` records runs and incidents, ``charts`` draws, ``html`` and ``pdf`` render. Must not import
``robohost.cli`` or ``robohost.bootstrap``.
"""
