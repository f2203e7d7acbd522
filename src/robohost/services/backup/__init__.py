"""Backups and safe upgrades: make (``make``), verify (``verify``), restore (``restore``), list and pull
(``catalog``), retention (``retention``, pure) and ``upgrade``. The CLI and the server's chores call these."""
