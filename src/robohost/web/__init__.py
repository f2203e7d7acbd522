"""The dashboard and its JSON API (FastAPI): pages, ``/api/v1``, authentication and security headers.

A layer of its own between ``bootstrap`` and ``services`` (as in ARCHITECTURE.md): it calls the services and
reads through the adapters it is given; nothing below imports it. ``create_app`` (``app.py``) builds the app
from a ``WebContext`` (``context.py``); the listeners and certificates are ``robohost.adapters.web``.
"""
