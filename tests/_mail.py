"""A real SMTP server in the test process (aiosmtpd), and the app that e-mails through it."""

from __future__ import annotations

import asyncio
import dataclasses
import email
import email.policy
import socket
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from starlette.applications import Starlette

from api.app import create_app
from api.devissuer import DevIssuer
from api.settings import Settings
from stores.deployment import Deployment
from stores.registry import Stores
from tests._tokens import TEST_ISSUER

PUBLIC_URL = "https://dsar.ontra.test"


class Inbox:
    """What the SMTP server received, as parsed messages."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    box = Inbox()
    port = _free_port()
    server = Controller(box, hostname="127.0.0.1", port=port)
    server.start()
    try:
        yield box, port
    finally:
        server.stop()


@pytest.fixture
async def mail_app(
    settings: Settings,
    deployment: Deployment,
    stores: Stores,
    issuer: DevIssuer,
    inbox: tuple[Inbox, int],
) -> AsyncIterator[Starlette]:
    with_smtp = dataclasses.replace(
        settings,
        smtp_url=f"smtp://127.0.0.1:{inbox[1]}",
        mail_from="privacy@ontra.test",
        public_url=PUBLIC_URL,
    )
    app = create_app(with_smtp, key_sources={TEST_ISSUER: issuer.key_set()})
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def mail_client(mail_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=mail_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def eventually(check: Any) -> Any:
    # The act awaits delivery; the server's handler runs in its own thread.
    for _ in range(100):
        found = check()
        if found:
            return found
        await asyncio.sleep(0.02)
    return check()


def body_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())
