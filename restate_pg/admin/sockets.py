"""Listening sockets for the HTTP servers started beside the ingress (admin API, metrics).

Bound before the server starts, so that a port in use is reported as such, rather than by
uvicorn, which exits the whole process when it cannot bind."""

from __future__ import annotations

import socket


def listening_socket(host: str, port: int) -> socket.socket:
    """A non-blocking socket listening on host:port; raises OSError when it cannot bind."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.setblocking(False)
    return sock
