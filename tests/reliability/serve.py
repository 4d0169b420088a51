"""The server under test: `create_app` under uvicorn exactly as `dsar serve` runs it, in its own
process, on a listening socket the test passes down (`DSAR_TEST_FD`), trusting the test issuer
of `DSAR_HOME` besides whatever `DSAR_OIDC_ISSUER` names. Logs go to stderr as JSON lines.

`python -m tests.reliability.serve` with the usual DSAR_* variables; tests start it through
`tests.reliability._server.LiveServer`. Test-only: `DSAR_TEST_CLOCK_SKEW=-300` runs the whole
process with its wall clock 300 s behind (time-machine; monotonic clocks are left alone), to
show the database's clock, not this one, judges expiry, leases and limits.
"""

from __future__ import annotations

import os
import socket
import time

import time_machine

from api import server
from api.app import create_app
from api.logs import configure
from api.settings import Settings
from tests._tokens import TEST_ISSUER, test_issuer


def main() -> None:
    skew = float(os.environ.get("DSAR_TEST_CLOCK_SKEW", "0"))
    if skew:
        time_machine.travel(time.time() + skew, tick=True).start()
    configure()
    settings = Settings.from_env()
    keys = {TEST_ISSUER: test_issuer(settings.home).key_set()}
    config = server.config(
        create_app(settings, key_sources=keys),
        header_timeout=settings.header_timeout,
        # `dsar serve` gives 10 s; a test may shorten it (DSAR_TEST_GRACE seconds).
        grace=int(os.environ.get("DSAR_TEST_GRACE", "5")),
    )
    # Not `fd=`: uvicorn takes a socket from a descriptor for a unix socket, and a TCP
    # connection then runs without TCP_NODELAY (40 ms per request from delayed ACKs).
    sock = socket.socket(fileno=int(os.environ["DSAR_TEST_FD"]))
    server.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
