"""``kierouter webhook serve``: run the KIE callback receiver on its own (on uvicorn).

It accepts callbacks for any job whose URL token was made with ``--token-secret`` (the same
secret as the router's ``WebhookConfig(token_secret=...)``), checks KIE's HMAC signature when a
key is given and answers 200 at once. With ``--spool FILE`` each accepted callback is written to
that callback spool (SQLite), where routers on this machine configured with
``WebhookConfig(spool=FILE)`` pick up the ones for their jobs within a second. Every request is
logged at INFO (``kierouter -v webhook serve``) without its query string. Secrets are best
passed through the environment: ``KIEROUTER_WEBHOOK_TOKEN_SECRET`` and ``KIE_WEBHOOK_HMAC_KEY``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from ._parser import port, positive, positive_int

if TYPE_CHECKING:
    from collections.abc import Callable

    from kierouter._server import Server, ServerLimits

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Add the ``webhook`` command group."""
    p: argparse.ArgumentParser = sub.add_parser(
        "webhook",
        help="run the KIE callback receiver",
        description="Run the KIE callback receiver.",
    )
    commands = p.add_subparsers(dest="webhook_command", metavar="COMMAND")
    serve = commands.add_parser("serve", help="serve the receiver until interrupted")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=port, default=8787, help="port (default 8787; 0 = any free)")
    serve.add_argument("--public-url", help="URL at which KIE reaches this server")
    serve.add_argument(
        "--hmac-key", help="KIE webhook HMAC key (default $KIE_WEBHOOK_HMAC_KEY); verify signatures"
    )
    serve.add_argument(
        "--token-secret", help="secret of the per-job URL tokens ($KIEROUTER_WEBHOOK_TOKEN_SECRET)"
    )
    serve.add_argument(
        "--spool", metavar="FILE", help="callback spool (SQLite) that routers pick callbacks from"
    )
    serve.add_argument(
        "--max-skew",
        type=positive,
        default=300.0,
        metavar="S",
        help="accepted age of a signature's timestamp, seconds (default 300)",
    )
    serve.add_argument(
        "--max-body",
        type=positive_int,
        default=256 * 1024,
        help="largest body, bytes (default 262144)",
    )
    serve.add_argument(
        "--read-timeout", type=positive, default=10.0, help="seconds a body may take (default 10)"
    )
    serve.add_argument(
        "--max-connections",
        type=positive_int,
        default=1000,
        help="open connections at most (default 1000)",
    )
    serve.add_argument(
        "--db",
        metavar="URL",
        help="front for the --db batches of this PostgreSQL database: each callback is checked "
        "with its batch's key and sent to the worker running the job (needs kierouter[scale])",
    )
    serve.set_defaults(func=run)
    p.set_defaults(func=lambda args: _usage(p))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM."""
    import dataclasses

    from kierouter._errors import ConfigurationError
    from kierouter._server import RECEIVER_LIMITS
    from kierouter.webhooks import CALLBACK_PREFIX, WebhookReceiver

    for name in ("max_body", "read_timeout", "max_connections"):
        if getattr(args, name) <= 0:
            flag = "--" + name.replace("_", "-")
            raise ConfigurationError(f"{flag} must be positive, got {getattr(args, name)}")
    limits = dataclasses.replace(RECEIVER_LIMITS, max_connections=args.max_connections)
    if getattr(args, "db", None):
        return _serve_db(args, limits)
    secret = args.token_secret or os.environ.get("KIEROUTER_WEBHOOK_TOKEN_SECRET")
    if not secret:
        raise ConfigurationError(
            "set --token-secret or KIEROUTER_WEBHOOK_TOKEN_SECRET (the router's "
            "WebhookConfig.token_secret) so callback tokens can be checked"
        )
    hmac_key = args.hmac_key or os.environ.get("KIE_WEBHOOK_HMAC_KEY")
    receiver = WebhookReceiver(
        token_secret=secret,
        hmac_key=hmac_key,
        max_skew=args.max_skew,
        max_body=args.max_body,
        read_timeout=args.read_timeout,
        spool=args.spool,
        accept_any_job=True,
    )

    def ready(server: Server) -> None:
        public = (args.public_url or server.url).rstrip("/")
        sys.stdout.write(f"{server.url}\n{public}{CALLBACK_PREFIX}{{job_key}}?token=...\n")
        sys.stdout.write("signatures: " + ("verified\n" if hmac_key else "not checked\n"))
        sys.stdout.write(
            f"spool: {args.spool}\n" if args.spool else "spool: none (callbacks are only logged)\n"
        )
        sys.stdout.flush()

    return _serve(receiver, args, limits, ready)


def _serve_db(args: argparse.Namespace, limits: ServerLimits) -> int:
    """``webhook serve --db URL``: the callback front of a database's batches, on its own."""
    from kierouter._errors import ConfigurationError

    for flag, value in (("--spool", args.spool), ("--token-secret", args.token_secret)):
        if value:  # each batch's callback key is in its folder; callbacks go through Postgres
            raise ConfigurationError(
                f"{flag} does not apply with --db: the front checks each callback with its "
                "batch's own key and hands it to the worker through the database"
            )
    from .worker import _check_scale

    _check_scale()
    from kierouter.scale._front import ClientFront

    hmac_key = args.hmac_key or os.environ.get("KIE_WEBHOOK_HMAC_KEY")
    front = ClientFront(
        args.db,
        hmac_key=hmac_key,
        max_skew=args.max_skew,
        max_body=args.max_body,
        read_timeout=args.read_timeout,
    )

    def ready(server: Server) -> None:
        public = (args.public_url or server.url).rstrip("/")
        sys.stdout.write(f"{server.url}\n")
        sys.stdout.write(f"workers: --callback-url {public}\n")
        sys.stdout.write("signatures: " + ("verified\n" if hmac_key else "not checked\n"))
        sys.stdout.flush()

    return _serve(front, args, limits, ready)


def _serve(
    app: Any, args: argparse.Namespace, limits: ServerLimits, ready: Callable[[Server], None]
) -> int:
    """Serve ``app`` until SIGINT/SIGTERM; 2 when the address cannot be served on."""
    from kierouter._server import serve_forever

    try:
        serve_forever(app, args.host, args.port, limits=limits, on_ready=ready)
    except OSError as exc:
        sys.stderr.write(f"kierouter: error: cannot serve on {args.host}:{args.port}: {exc}\n")
        return 2
    return 0
