"""`dsar serve [--host H] [--port P] [--no-seed]`: migrate, seed the demo once, serve.

The order matters to whoever runs it: the port is taken first (a second `dsar serve` on a busy
port stops there, before it touches any database), the banner is printed only once the server
answers, and on the way out (Ctrl-C or SIGTERM) the embedded PostgreSQL is stopped only if this
process started it and no other process uses it.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import errno
import os
import shlex
import signal
import socket
import sys
from pathlib import Path
from types import FrameType

import asyncpg

from api import server
from api.cli import workers
from api.cli._common import CommandError
from api.settings import DEV_ISSUER, Settings
from catalogue import load_catalogue
from domain.partners import DEMO_PARTNER, ensure_demo_partner
from stores.deployment import Deployment, migrate
from stores.registry import Stores
from stores.seed import seed


def add_serve_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = subparsers.add_parser("serve", help="migrate, seed the demo once, and serve the API")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument(
        "--port", type=int, default=8000, help="default 8000; 0: a free one, which the banner names"
    )
    s.add_argument("--no-seed", action="store_true", help="do not seed the demo subjects")
    s.add_argument(
        "--workers",
        type=_workers,
        default=1,
        help="server processes sharing the port (default 1); each has its own slots and pools",
    )


def _workers(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError("--workers must be a whole number") from None
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError("--workers must be between 1 and 64")
    return value


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, taken before anything else starts."""
    try:
        return socket.create_server((host, port), backlog=2048)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise CommandError(
                f"port {port} on {host} is already in use (is another dsar serve running?); "
                "stop that one, or choose another port with --port"
            ) from None
        raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def served(settings: Settings, host: str, port: int) -> Settings:
    """The settings as served on `host`:`port`: without DSAR_PUBLIC_URL, the links in e-mails
    point where this server listens (a second `dsar serve --port 8001` sent links to 8000)."""
    if settings.public_url_set:
        return settings
    # Listening on every address: this machine's own is one of them.
    here = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104  # compared, not bound
    return dataclasses.replace(settings, public_url=base_url(here, port))


def base_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def terminate(signum: int, frame: FrameType | None) -> None:
    """SIGTERM (systemd, a container, `kill PID`) ends the command as Ctrl-C does: every
    `finally` runs, so the embedded PostgreSQL this process started is stopped too."""
    raise SystemExit(128 + signum)


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from api.app import contact_problem
    from api.logs import configure

    # Before anything starts: every statement names this address as where rights are
    # exercised by request, so outside development a stand-in one is refused.
    problem = contact_problem(load_catalogue(settings.catalogue_file), settings)
    if problem is not None:
        raise CommandError(f"refusing to serve: {problem}")
    sock = listen(args.host, args.port)
    port = sock.getsockname()[1]  # the one taken, where --port 0 asked for any
    settings = served(settings, args.host, port)
    signal.signal(signal.SIGTERM, terminate)
    configure()
    deployment = settings.locate()
    try:
        loaded = asyncio.run(_prepare(settings, deployment, args.no_seed))
        text = banner(settings, args.host, port, loaded, workers=args.workers)
        if args.workers == 1:
            _serve(settings, sock, text)
        else:
            workers.run(args.workers, lambda first: _serve(settings, sock, text if first else ""))
    finally:
        sock.close()
        stopped = deployment.stop()
        print(
            "dsar stopped" + (" (and the embedded PostgreSQL it started)" if stopped else ""),
            file=sys.stderr,
            flush=True,
        )
    return 0


def _serve(settings: Settings, sock: socket.socket, text: str) -> None:
    from api.app import create_app

    config = server.config(create_app(settings), header_timeout=settings.header_timeout, grace=10)
    server.Server(config, text).run(sockets=[sock])


async def _prepare(settings: Settings, d: Deployment, no_seed: bool) -> list[str]:
    await migrate(d)
    if no_seed or not d.demo:
        return []
    catalogue = load_catalogue(settings.catalogue_file)
    stores = await Stores.open(d.stores, catalogue, d.service_dsn)
    try:
        if settings.dev_issuer:
            conn = await asyncpg.connect(d.service_dsn)
            try:
                await ensure_demo_partner(conn, catalogue, DEV_ISSUER)
            finally:
                await conn.close()
        return await seed(stores, catalogue, issuer=DEV_ISSUER)
    finally:
        await stores.close()


def dsar_command(settings: Settings) -> str:
    """How to run `dsar` from where the server was started, with this server's home: what the
    banner prints must work when pasted into that shell."""
    exe = Path(sys.executable).parent / "dsar"
    where = Path.cwd()
    shown = str(exe.relative_to(where)) if exe.is_relative_to(where) else str(exe)
    env = "DSAR_DEV_ISSUER=1"
    if settings.home != (where / ".dsar").resolve():
        env += f" DSAR_HOME={shlex.quote(str(settings.home))}"
    return f"{env} {shlex.quote(shown)}"


def banner(settings: Settings, host: str, port: int, loaded: list[str], *, workers: int = 1) -> str:
    base = base_url(host, port)
    processes = f"; {workers} processes" if workers > 1 else ""
    lines = [
        "",
        f"dsar is serving on {base}  (seeded now: {', '.join(loaded) or 'nothing new'}{processes})",
        f"  health:   curl {base}/healthz   ready: curl {base}/readyz",
    ]
    if settings.dev_issuer:
        dsar = dsar_command(settings)
        lines += [
            f"  account:  {base}/account   (demo sign-in: alice, bob, carol, dave)",
            f"  graphiql: {base}/graphql   (in a browser; signed in as alice, ?as=bob to switch)",
            f"  token:    TOKEN=$({dsar} token --customer alice)",
            f'  query:    curl -s {base}/graphql -H "authorization: Bearer $TOKEN" '
            "-H 'content-type: application/json' "
            '-d \'{"query":"{ me { profile { firstName } } }"}\'',
            f"  partner:  {dsar} token --partner {DEMO_PARTNER}   (may receive transfers)",
            f"  staff:    {dsar} token --staff privacy-1   (works the request queue)",
            f"  privacy:  {base}/privacy   (the queue in a browser; demo sign-in as staff)",
            f"  request:  {base}/requests/new   (ask for your data without an account)",
            f"  e-mail:   {base}/account/demo/mail   (what people would be sent)",
        ]
    lines.append(f"  stop:     Ctrl-C here, or kill {os.getpid()}")
    return "\n".join(lines) + "\n"
