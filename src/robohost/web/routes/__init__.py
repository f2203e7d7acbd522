"""The web app's routers: ``auth`` (sign-in), ``pages`` (the dashboard), ``api`` (``/api/v1``)."""
