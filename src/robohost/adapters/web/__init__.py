"""The dashboard's transport: TLS certificates and contexts (``tls``), the uvicorn listeners (``server``)."""
