"""Logging infrastructure: one event per line, secrets masked before any handler sees a record.

``records`` turns a ``LogRecord`` into a JSON line or a readable line and masks secrets (through a redaction
function the composition root passes in); ``files`` writes the rotating JSON log and the append-only audit
log of a home; ``syslog_tls`` sends every record to a remote syslog collector (RFC 5424 over TLS, RFC 5425),
keeping what cannot be sent yet in a bounded queue on disk. Must not import ``robohost.services``,
``robohost.cli`` or ``robohost.config``.
"""
