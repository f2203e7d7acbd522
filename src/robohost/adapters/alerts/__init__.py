"""Alert channels: e-mail over SMTP (STARTTLS) and webhooks (generic JSON, Telegram, Slack, ntfy), and the
outbox that delivers to them in the background with retries.

``message.Message`` is what a channel sends; deciding what to send and when (deduplication, reminders,
recoveries) is ``robohost.services.alerts``. Must not import ``robohost.services``, ``robohost.cli`` or
``robohost.config``.
"""
