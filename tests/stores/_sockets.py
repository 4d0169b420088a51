"""What an export's database connection holds unread (stores/pool.py `bound_receive_buffer`)."""

from __future__ import annotations

import fcntl
import socket
import sys
import termios

import pytest

from stores.pool import EXPORT_RECEIVE_BUFFER


def kept_receive_buffer() -> int:
    """What this kernel keeps when `EXPORT_RECEIVE_BUFFER` is asked: twice the size asked, at
    most twice `net.core.rmem_max` (212992 by default: 416 kB; 4 MB on these machines)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        default = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, EXPORT_RECEIVE_BUFFER)
        kept = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    assert kept != default  # or a connection without the bound could not be told apart
    return kept


def tcp_socket(transport: object) -> socket.socket:
    """The connection's socket; skips where the database is reached over a Unix socket (the
    embedded server's), whose sender bounds what waits in it."""
    sock = transport.get_extra_info("socket")  # type: ignore[attr-defined]  # an asyncio transport
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        pytest.skip("the database is on a Unix socket: no receive buffer to bound")
    return sock  # type: ignore[no-any-return]


def unread(sock: socket.socket) -> int:
    """Bytes the kernel holds that the connection has not read yet."""
    return int.from_bytes(fcntl.ioctl(sock.fileno(), termios.FIONREAD, bytes(4)), sys.byteorder)
