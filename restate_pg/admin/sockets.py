"""Listening sockets for the HTTP servers started beside the ingress (admin API, metrics).

Bound before the server starts, so that a port in use is reported as such, rather than by
uvicorn, which exits the whole process when it cannot bind. With `reuse_port`, several processes
(`--processes N`) each bind their own socket on one port and the kernel spreads connections
over them (SO_REUSEPORT)."""

from __future__ import annotations

import socket


def bound_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A TCP socket bound to host:port, not listening; raises OSError when it cannot bind."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def listening_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A non-blocking socket listening on host:port; raises OSError when it cannot bind."""
    sock = bound_socket(host, port, reuse_port=reuse_port)
    sock.listen(1024 if reuse_port else 128)
    sock.setblocking(False)
    return sock
