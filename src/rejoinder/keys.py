"""`rejoinder keys …` and `rejoinder projects …`: projects and API keys managed from a shell,
on the database the config names, with no gateway running (the gateways see a change within a
second: see `engine.access.principals`)."""

from __future__ import annotations

import argparse
import json
import time

import msgspec

from rejoinder.config import Config, ConfigError
from rejoinder.engine.access import make_key
from rejoinder.protocol.access import Limits
from rejoinder.protocol.ids import new_id
from rejoinder.store import access
from rejoinder.store.repository import Store


def add_commands(commands: argparse._SubParsersAction) -> None:
    keys = commands.add_parser("keys", help="create, list and revoke API keys").add_subparsers(dest="action", required=True)
    create = keys.add_parser("create", help="a new API key of a project; its value is printed once")
    create.add_argument("--project", required=True, help="the project's id (see `rejoinder projects list`)")
    create.add_argument("--name", default="cli", help="the key's name")
    _limit_options(create)
    listing = keys.add_parser("list", help="every key (redacted), or one project's")
    listing.add_argument("--project")
    revoke = keys.add_parser("revoke", help="revoke a key: it stops working on every gateway within a second")
    revoke.add_argument("key_id")
    projects = commands.add_parser("projects", help="create and list projects").add_subparsers(dest="action", required=True)
    made = projects.add_parser("create", help="a new project")
    made.add_argument("name")
    _limit_options(made)
    projects.add_parser("list", help="every active project")
    for group in (keys, projects):
        for action in group.choices.values():
            action.add_argument("--config", help="YAML config file: the database it names (default: as for serve)")


def _limit_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", help="the models it may use, comma-separated ('*' ends a prefix); default: all")
    parser.add_argument("--rpm", type=int, help="requests per minute")
    parser.add_argument("--tpm", type=int, help="tokens per minute")
    parser.add_argument("--budget", type=float, help="dollars per --budget-period (priced by the models' price in the config)")
    parser.add_argument("--budget-period", choices=["day", "month"], default="month")


def run(config: Config, args: argparse.Namespace) -> None:
    store = Store(config.database_url, readers=1)
    try:
        store.migrate()
        with store.engine.begin() as conn:
            _ACTIONS[(args.command, args.action)](conn, args)
    finally:
        store.close()


def _limits(args: argparse.Namespace) -> Limits:
    if any(value is not None and value < 1 for value in (args.rpm, args.tpm)) or (args.budget is not None and args.budget <= 0):
        raise ConfigError("--rpm and --tpm must be at least 1, --budget above 0")
    return Limits(args.models.split(",") if args.models else None, args.rpm, args.tpm, args.budget, args.budget_period)


def _create_key(conn, args: argparse.Namespace) -> None:
    project = access.project(conn, args.project)
    if project is None or project.archived_at is not None:
        raise ConfigError(f"no active project {args.project!r} (see `rejoinder projects list`)")
    key, value, digest = make_key(project.id, args.name, _limits(args))
    access.create_key(conn, key, digest)
    print(json.dumps({"id": key.id, "project": key.project, "name": key.name, "value": value}, ensure_ascii=False))


def _list_keys(conn, args: argparse.Namespace) -> None:
    for key in access.all_keys(conn):
        if args.project in (None, key.project):
            limits = msgspec.json.decode(key.limits)
            shown = {"id": key.id, "project": key.project, "name": key.name, "redacted_value": key.redacted_value, "managed_by": key.managed, **limits}
            print(json.dumps(shown, ensure_ascii=False))


def _revoke(conn, args: argparse.Namespace) -> None:
    if not access.delete_key(conn, None, args.key_id):
        raise ConfigError(f"no API key {args.key_id!r} made through the API or this command (config-file keys change in the file)")
    print(json.dumps({"id": args.key_id, "deleted": True}, ensure_ascii=False))


def _create_project(conn, args: argparse.Namespace) -> None:
    project = access.Project(new_id("proj"), args.name, int(time.time()), None, msgspec.json.encode(_limits(args)), "api")
    access.create_project(conn, project)
    print(json.dumps({"id": project.id, "name": project.name}, ensure_ascii=False))


def _list_projects(conn, _: argparse.Namespace) -> None:
    after, more = None, True
    while more:  # a page at a time, printed as it comes
        rows, more = access.project_page(conn, after, 500, False)
        for project in rows:
            print(
                json.dumps({"id": project.id, "name": project.name, "managed_by": project.managed, **msgspec.json.decode(project.limits)}, ensure_ascii=False)
            )
        after = rows[-1].id if rows else None


_ACTIONS = {
    ("keys", "create"): _create_key,
    ("keys", "list"): _list_keys,
    ("keys", "revoke"): _revoke,
    ("projects", "create"): _create_project,
    ("projects", "list"): _list_projects,
}
