"""`paperdigest web`: the app served by uvicorn on `[web] listen`."""

from __future__ import annotations

import uvicorn
from sqlalchemy import Engine

from paperdigest.config import Settings
from paperdigest.errors import UsageError
from paperdigest.web.app import create_app


def serve(settings: Settings, engine: Engine) -> int:
    """Serve until stopped (SIGTERM/SIGINT: uvicorn finishes the requests in flight)."""
    if settings.web is None:
        raise UsageError(f"{settings.origin}: no [web] section: set web.base_url to serve the web side")
    host, _, port = settings.web.listen.rpartition(":")
    uvicorn.run(
        create_app(settings, engine),
        host=host.strip("[]"),
        port=int(port),
        log_level="warning",
        access_log=False,
        server_header=False,
        proxy_headers=False,
        limit_concurrency=64,
        timeout_keep_alive=5,
    )
    return 0
