"""The `rejoinder` command."""

from __future__ import annotations

import argparse
import logging
import sys

from rejoinder import __version__, config, keys, server

ENVIRONMENT = """without a config file, the environment configures the gateway:
  OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY (or GOOGLE_API_KEY)
                          serve that provider's models (OPENAI_BASE_URL: another Chat Completions server)
  REJOINDER_DATABASE_URL  where responses are stored (default: SQLite in $XDG_DATA_HOME/rejoinder,
                          else ~/.local/share/rejoinder; a relative path is the working directory's)
  REJOINDER_MASTER_KEY    the key that may do everything (without one, the gateway is open to this machine)
  REJOINDER_SECRET_KEY    what seals encrypted_content (default: a secret kept in the database)
  REJOINDER_REDIS_URL     Redis, for limits and live streams across instances
in a config file, ${NAME} reads a variable of the environment."""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="rejoinder", description="The OpenAI Responses API on top of any model provider.")
    parser.add_argument("--version", action="version", version=f"rejoinder {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="start the gateway",
        description="Start the gateway: the Responses API on /v1, the console on /console.",
        epilog=ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--config", help="YAML config file (default: ./rejoinder.yaml if present, else the environment below)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s; another needs a master_key)")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on (default: %(default)s)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes sharing the port (default: %(default)s; use PostgreSQL to scale out)")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"], help="(default: %(default)s)")
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
