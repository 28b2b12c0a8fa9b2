"""``parkflow api``: the API and pages alone, in N worker processes, for reads beyond what the
one in ``parkflow serve`` answers. No loop runs here (no rollups, detection or alerts): serve
keeps those, once per store, and these workers read what it writes. Put them behind the same
proxy as serve's API; the pages' cookies are signed by the shared pepper, so any worker
answers any session.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

EXIT_OK = 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("api", help="the API and pages only, in N worker processes (reads)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (one per core)")
    p.add_argument("--host", default=None, help="address (default PARKFLOW_HTTP_HOST)")
    p.add_argument("--port", type=int, default=None, help="port (default PARKFLOW_HTTP_PORT)")
    p.add_argument("--registry", type=Path, help="park registry YAML (PARKFLOW_REGISTRY)")
    p.add_argument("--url", help="database URL (default PARKFLOW_DATABASE_URL)")
    p.set_defaults(func=_cmd_api)


def _cmd_api(args: argparse.Namespace) -> int:
    import uvicorn

    from parkflow.errors import InputError
    from parkflow.logs import setup_logging
    from service.api.context import open_context
    from service.settings import ServiceSettings

    if args.workers < 1:
        raise InputError("--workers: at least 1")
    # the workers read their settings from the environment: what the options say goes there
    if args.registry:
        os.environ["PARKFLOW_REGISTRY"] = str(args.registry)
    if args.url:
        os.environ["PARKFLOW_DATABASE_URL"] = args.url
    settings = ServiceSettings()
    open_context(settings).close()  # an unmigrated database or a bad registry: say so here
    setup_logging("json")
    uvicorn.run(
        "service.api.app:app_from_settings",
        factory=True,
        host=args.host or settings.http_host,
        port=settings.http_port if args.port is None else args.port,
        workers=args.workers,
        log_config=None,
        access_log=False,
    )
    return EXIT_OK
