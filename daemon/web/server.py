"""`paperdigest web`: the app served by uvicorn on `[web] listen`."""

from __future__ import annotations

import socket
import sys

import uvicorn
from sqlalchemy import Engine

from paperdigest.config import Settings
from paperdigest.errors import PaperdigestError, UsageError
from paperdigest.web.app import create_app


class ListenError(PaperdigestError):
    """The address of `[web] listen` cannot be bound (in use, not ours, not permitted): exit 1."""


def require_web(settings: Settings) -> None:
    """Refuse (exit 2) a config without [web]: before the store is opened, so that is what it says."""
    if settings.web is None:
        raise UsageError(f"{settings.origin}: no [web] section: set web.base_url to serve the web side")


def serve(settings: Settings, engine: Engine) -> int:
    """Serve until stopped (SIGTERM/SIGINT: uvicorn finishes the requests in flight)."""
    require_web(settings)
    assert settings.web is not None
    app = create_app(settings, engine)  # first: a secret it cannot read is refused before "serving"
    host, _, port = settings.web.listen.rpartition(":")
    host = host.strip("[]")
    # The socket is bound here, so that a port in use is one line of ours (uvicorn would log its
    # own and exit 3, outside the documented codes).
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, int(port)))
    except OSError as exc:
        sock.close()
        reason = exc.strerror or exc
        raise ListenError(f"{settings.origin}: web.listen: cannot listen on {settings.web.listen}: {reason}") from None
    where = f"http://{settings.web.listen}"
    print(f"paperdigest web: serving {settings.web.base_url} on {where} (stop with Ctrl-C or SIGTERM)", file=sys.stderr)
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        server_header=False,
        proxy_headers=False,
        limit_concurrency=64,
        timeout_keep_alive=5,
    )
    uvicorn.Server(config).run(sockets=[sock])
    return 0
