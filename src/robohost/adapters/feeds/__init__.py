"""Market feeds: adapters that implement ``robohost.engine.ports.MarketFeed``.

``replay`` plays recorded CSV/Parquet files (and DataFrames) back as one time-ordered stream;
``synthetic`` generates seeded random-walk bars for tests, demos and benchmarks. Live feeds
live beside them. Feeds hand the engine raw rows and never clean them: the engine validates,
rejects and counts bad data. This package must not import robohost.config, robohost.cli,
robohost.services or robohost.adapters.db.
"""
