"""E-mail alerts over SMTP: STARTTLS with certificate verification (required by default), then login.

The password is never sent over a connection that is not encrypted: without STARTTLS (or implicit TLS on
port 465) a channel that has a user name refuses to log in.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from robohost.adapters.alerts.message import Message

IMPLICIT_TLS_PORT = 465


class EmailChannel:
    """Sends each message as one e-mail."""

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        recipients: list[str],
        *,
        starttls: bool = True,
        username: str | None = None,
        password: str | None = None,
        ca: Path | None = None,
        level: str = "warning",
        trading: bool = False,
        timeout_s: float = 20.0,
    ) -> None:
        self.name = "email"
        self.host = host
        self.port = port
        self.sender = sender
        self.recipients = recipients
        self.starttls = starttls
        self.username = username
        self._password = password
        self.ca = ca
        self.level = level
        self.trading = trading
        self.timeout_s = timeout_s

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca) if self.ca else None)

    def email(self, message: Message) -> EmailMessage:
        """The e-mail of ``message``."""
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = ", ".join(self.recipients)
        mail["Subject"] = message.title
        mail["Date"] = format_datetime(message.time)
        mail["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2] or None)
        mail["X-Robohost-Level"] = message.level
        mail["X-Robohost-State"] = message.state
        body = message.text
        if message.details:
            body += "\n\n" + "\n".join(f"{k}: {v}" for k, v in message.details.items())
        mail.set_content(body + f"\n\n-- robohost on {message.host}, {message.time:%Y-%m-%d %H:%M:%S} UTC\n")
        return mail

    def send(self, message: Message) -> None:
        """Connect, upgrade to TLS, log in, send; raise on any failure."""
        mail = self.email(message)
        if self.port == IMPLICIT_TLS_PORT and not self.starttls:
            with smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout_s, context=self._context()) as smtp:
                self._login_and_send(smtp, mail, encrypted=True)
            return
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
            smtp.ehlo()
            if self.starttls:
                smtp.starttls(context=self._context())
                smtp.ehlo()
            self._login_and_send(smtp, mail, encrypted=self.starttls)

    def _login_and_send(self, smtp: smtplib.SMTP, mail: EmailMessage, encrypted: bool) -> None:
        if self.username:
            if not encrypted:
                raise smtplib.SMTPException("refusing to send the SMTP password over an unencrypted connection")
            smtp.login(self.username, self._password or "")
        smtp.send_message(mail)
