"""E-mail to people about their requests, through SMTP (`DSAR_SMTP_URL`, aiosmtplib).

The messages themselves are made in `domain.notices`; this only delivers them. A failure is
logged with the error's type and the request id only, never the address or the body.
"""

from __future__ import annotations

import logging
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import unquote, urlsplit

import aiosmtplib

from domain.notices import LogMailer, Mailer, Notice

log = logging.getLogger("dsar.mail")
_TIMEOUT = 10.0


class SmtpMailer:
    def __init__(self, url: str, sender: str) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.tls = parts.scheme == "smtps"
        self.port = parts.port or (465 if self.tls else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.sender = sender

    def message(self, notice: Notice) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = notice.to
        msg["Subject"] = notice.subject
        msg["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2] or None)
        msg["X-Dsar-Request"] = str(notice.request)
        msg.set_content(notice.body)
        return msg

    async def send(self, notice: Notice) -> bool:
        try:
            await aiosmtplib.send(
                self.message(notice),
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                use_tls=self.tls,
                start_tls=None if self.tls else False,
                timeout=_TIMEOUT,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            log.warning(
                "e-mail not sent",
                extra={
                    "error": type(exc).__name__,
                    "event": f"{notice.kind.value} {notice.request}",
                },
            )
            return False
        return True


def mailer_for(smtp_url: str | None, sender: str) -> Mailer:
    """SMTP when a URL is set, else the log (with the demo page's memory)."""
    return LogMailer() if smtp_url is None else SmtpMailer(smtp_url, sender)
