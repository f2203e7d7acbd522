"""``python -m robohost``: the same as the ``robohost`` command (used by ``robohost upgrade`` to run a new version)."""

from robohost.cli.app import main

main()
