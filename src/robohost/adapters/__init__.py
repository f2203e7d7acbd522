"""Infrastructure behind the engine's ports: market feeds, the SQL journal and read model.

Each subpackage is independent of the others. Adapters may import ``robohost.engine``,
``robohost.domain`` and ``robohost.errors``; never ``robohost.cli``, ``robohost.services`` or the web layer.
"""
