"""The `rejoinder` command."""

from __future__ import annotations

import argparse
import logging
import sys

from rejoinder import __version__, config, keys, server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="rejoinder", description="The OpenAI Responses API on top of any model provider.")
    parser.add_argument("--version", action="version", version=f"rejoinder {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="start the gateway")
    serve.add_argument("--config", help="YAML config file (default: ./rejoinder.yaml if present, else the environment)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument("--access-log", action="store_true", help="log one line per request (method, path, status, size, time; never headers)")
    keys.add_commands(commands)
    args = parser.parse_args(argv)

    logging.basicConfig(level=getattr(args, "log_level", "warning").upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command != "serve":
            keys.run(config.load(args.config), args)
            return
        server.serve(config.load(args.config), args.host, args.port, args.workers, args.access_log)
    except config.ConfigError as exc:
        print(f"rejoinder: {exc}", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:  # the port is taken, the address is not ours, …
        print(f"rejoinder: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        sys.exit(1)
