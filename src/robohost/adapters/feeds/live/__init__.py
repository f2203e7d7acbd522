"""Live market feeds: closed bars streamed from an exchange or data vendor, as ``MarketFeed``s.

- ``bars``: pure logic that turns streamed candle updates (``CandleCloser``) and trades
  (``TradeBarBuilder``) into closed bars, each emitted once and never changed afterwards.
- ``base``: ``LiveFeed``, the machinery every asyncio client shares: a background thread with its own
  event loop, reconnects with backoff and jitter, gap fill from REST history, a staleness watchdog and
  clock-skew detection, statuses reported through ``on_status``.
- ``ccxt_feed``: ``CcxtFeed``, crypto exchanges through ccxt (websocket candles, or REST polling).
- ``alpaca_feed``: ``AlpacaFeed``, US stocks from Alpaca's market-data websocket.

Import the module you need: each pulls in its own client library. This package must not import
robohost.config, robohost.cli, robohost.services or robohost.adapters.db.
"""
