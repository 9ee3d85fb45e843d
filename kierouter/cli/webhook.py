"""``kierouter webhook serve``: run the KIE callback receiver on its own.

It accepts callbacks for any job whose URL token was made with ``--token-secret`` (the same
secret as the router's ``WebhookConfig(token_secret=...)``), checks KIE's HMAC signature when a
key is given, answers 200 at once, logs each callback and appends it to ``--spool`` as one JSON
line (``job_key``, ``task_id``, ``received_at``, ``body``) for a journal to reconcile later.
Secrets are best passed through the environment: ``KIEROUTER_WEBHOOK_TOKEN_SECRET`` and
``KIE_WEBHOOK_HMAC_KEY``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from ._parser import positive

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
    serve.add_argument("--port", type=int, default=8787, help="port (default 8787)")
    serve.add_argument("--public-url", help="URL at which KIE reaches this server")
    serve.add_argument(
        "--hmac-key", help="KIE webhook HMAC key (default $KIE_WEBHOOK_HMAC_KEY); verify signatures"
    )
    serve.add_argument(
        "--token-secret", help="secret of the per-job URL tokens ($KIEROUTER_WEBHOOK_TOKEN_SECRET)"
    )
    serve.add_argument("--spool", metavar="FILE", help="append accepted callbacks as JSON lines")
    serve.add_argument(
        "--max-skew",
        type=positive,
        default=300.0,
        metavar="S",
        help="accepted age of a signature's timestamp, seconds (default 300)",
    )
    serve.set_defaults(func=run)
    p.set_defaults(func=lambda args: _usage(p))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM."""
    from kierouter._errors import ConfigurationError
    from kierouter._http_server import Server, serve_forever
    from kierouter.webhooks import CALLBACK_PREFIX, WebhookReceiver

    secret = args.token_secret or os.environ.get("KIEROUTER_WEBHOOK_TOKEN_SECRET")
    if not secret:
        raise ConfigurationError(
            "set --token-secret or KIEROUTER_WEBHOOK_TOKEN_SECRET (the router's "
            "WebhookConfig.token_secret) so callback tokens can be checked"
        )
    hmac_key = args.hmac_key or os.environ.get("KIE_WEBHOOK_HMAC_KEY")
    spool = args.spool

    def on_callback(job_key: str, task_id: str, body: Any) -> None:
        line = {"job_key": job_key, "task_id": task_id, "received_at": time.time(), "body": body}
        sys.stderr.write(f"callback: job {job_key} task {task_id}\n")
        if spool:
            with open(spool, "a", encoding="utf-8") as out:
                out.write(json.dumps(line) + "\n")

    receiver = WebhookReceiver(
        token_secret=secret,
        hmac_key=hmac_key,
        max_skew=args.max_skew,
        accept_any_job=True,
        on_callback=on_callback,
    )

    def ready(server: Server) -> None:
        public = (args.public_url or server.url).rstrip("/")
        sys.stdout.write(f"{server.url}\n{public}{CALLBACK_PREFIX}{{job_key}}?token=...\n")
        sys.stdout.write("signatures: " + ("verified\n" if hmac_key else "not checked\n"))
        sys.stdout.flush()

    try:
        serve_forever(receiver, args.host, args.port, on_ready=ready)
    except OSError as exc:
        sys.stderr.write(f"kierouter: error: cannot serve on {args.host}:{args.port}: {exc}\n")
        return 2
    return 0
