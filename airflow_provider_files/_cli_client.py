"""The API client of an ``airflow-files`` command: the options choosing it, and reading them.

``--files-conn-id``/``--conn-id`` names an Airflow connection. When ``AIRFLOW_CONN_<ID>`` holds it
(JSON or URI form) it is read here without importing Airflow, as Airflow's environment-variable
backend would read it; only a connection that is not in the environment (metadata database,
secrets backend) goes through Airflow. ``--base-url`` and ``--conn-json`` never import Airflow.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import replace

from airflow_provider_files._cli_args import name_value_pair
from airflow_provider_files.api import ClientSettings, FilesApiError, FilesClient
from airflow_provider_files.api.connections import (
    CONN_ENV_PREFIX,
    ConnectionFields,
    connection_from_env,
    connection_from_json,
    settings_from_connection,
)
from airflow_provider_files.api.gateways import json_object

DEFAULT_CONN_ID = "openai_files_default"
DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"

_REPEATABLE_OPTIONS = (
    (
        "--header",
        "headers",
        "NAME=VALUE",
        "extra header sent on every request with --base-url or --conn-json (repeatable); values of "
        "secret-looking names are masked",
    ),
    (
        "--gateway-option",
        "gateway_options",
        "EXTRA=VALUE",
        "a connection extra with --base-url or --conn-json (repeatable), e.g. portkey_provider=openai, "
        "portkey_custom_host=https://api.openai.com/v1, portkey_config_secret=..., api_version=...",
    ),
)


def add_connection_arguments(target: argparse._ArgumentGroup | argparse.ArgumentParser) -> None:
    """The options choosing the API: an Airflow connection, or a base URL (or a connection as JSON)
    and a key variable; shared by the ``upload`` and ``batch`` commands, read by :func:`client_from_args`."""
    target.add_argument(
        "--files-conn-id",
        "--conn-id",
        dest="files_conn_id",
        default=None,
        help=f"Airflow connection id (default {DEFAULT_CONN_ID}); read from AIRFLOW_CONN_<ID> without "
        "Airflow when that variable is set, else through Airflow (metadata database, secrets backend)",
    )
    target.add_argument(
        "--base-url",
        default=None,
        help="API base URL, e.g. https://api.openai.com/v1; skips Airflow (key from --api-key-env)",
    )
    target.add_argument(
        "--api-key-env",
        default=DEFAULT_API_KEY_ENV,
        help=f"environment variable holding the API key with --base-url (default {DEFAULT_API_KEY_ENV})",
    )
    target.add_argument("--gateway", default=None, help="gateway profile with --base-url (default openai)")
    for flag, dest, metavar, help_text in _REPEATABLE_OPTIONS:
        target.add_argument(
            flag,
            dest=dest,
            action="append",
            type=name_value_pair,
            default=[],
            metavar=metavar,
            help=help_text,
        )
    target.add_argument(
        "--conn-json",
        default=None,
        metavar="JSON",
        help='a connection in Airflow\'s JSON form, e.g. \'{"host": "http://127.0.0.1:8787/v1", "extra": '
        '{"gateway": "portkey", ...}}\'; the key from "password" or --api-key-env; skips Airflow',
    )


def _settings_from_flags(args: argparse.Namespace, command: str) -> ClientSettings:
    """Settings from --base-url or --conn-json plus the flags, read as the hook reads a connection."""
    flag = "--base-url" if args.base_url else "--conn-json"
    label = f"airflow-files {command} {flag}"
    fields = (
        connection_from_json(args.conn_json, conn_id=label, source="--conn-json")
        if args.conn_json
        else ConnectionFields(conn_id=label)
    )
    extra = dict(fields.extra_dejson)
    if args.gateway:
        extra["gateway"] = args.gateway
    extra.update(dict(args.gateway_options))
    if args.headers:
        headers = json_object(extra.get("headers") or {}, name="headers", context=flag)
        extra["headers"] = {**headers, **dict(args.headers)}
    api_key = fields.password or os.environ.get(args.api_key_env)
    if not api_key and not extra.get("portkey_api_key"):
        raise ValueError(f"{flag} needs the API key in the environment variable {args.api_key_env}")
    conn = replace(fields, host=args.base_url or fields.host, password=api_key, extra_dejson=extra)
    return replace(settings_from_connection(conn), context=label)


def _settings_through_airflow(conn_id: str) -> ClientSettings:
    """Settings of a connection only Airflow can find (metadata database, secrets backend)."""
    from airflow_provider_files.hooks.files import FilesHook

    try:
        return FilesHook(conn_id).settings
    except FilesApiError:
        raise
    except Exception as exc:  # Airflow's AirflowNotFoundException and friends
        raise ValueError(
            f"cannot read connection {conn_id!r} ({exc}); outside Airflow define it with the "
            f"environment variable {CONN_ENV_PREFIX}{conn_id.upper()}"
        ) from None


def settings_from_args(args: argparse.Namespace, *, command: str = "upload") -> ClientSettings:
    """The settings the options of :func:`add_connection_arguments` choose.

    :param command: the sub-command, named in the client's messages.
    :raises ValueError: the options contradict each other, the key or the connection is missing.
    """
    if args.base_url or args.conn_json:
        if args.files_conn_id:
            raise ValueError("give either --files-conn-id or --base-url/--conn-json, not both")
        if args.base_url and args.conn_json:
            raise ValueError("give either --base-url or --conn-json, not both")
        return _settings_from_flags(args, command)
    if args.headers or args.gateway_options:
        raise ValueError(
            "--header and --gateway-option apply to --base-url or --conn-json; "
            "a connection sets them in its extras"
        )
    conn_id = args.files_conn_id or DEFAULT_CONN_ID
    from_env = connection_from_env(conn_id)
    if from_env is not None:
        return settings_from_connection(from_env)
    return _settings_through_airflow(conn_id)


def client_from_args(
    args: argparse.Namespace, max_connections: int, *, command: str = "upload"
) -> FilesClient:
    """The client of the options of :func:`add_connection_arguments` (see :func:`settings_from_args`)."""
    return FilesClient(settings_from_args(args, command=command), max_connections=max_connections)


@contextlib.contextmanager
def logging_to_stderr(quiet: bool) -> Iterator[None]:
    """The package's log lines on stderr for the duration of the command (undone afterwards, so
    running the command inside another program leaves its logging as it was)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    package = logging.getLogger("airflow_provider_files")
    httpx_logger = logging.getLogger("httpx")
    saved = (package.level, package.propagate, httpx_logger.level)
    package.addHandler(handler)
    package.setLevel(logging.WARNING if quiet else logging.INFO)
    package.propagate = False
    httpx_logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        package.removeHandler(handler)
        package.level, package.propagate = saved[0], saved[1]
        httpx_logger.setLevel(saved[2])


__all__ = [
    "DEFAULT_API_KEY_ENV",
    "DEFAULT_CONN_ID",
    "add_connection_arguments",
    "client_from_args",
    "logging_to_stderr",
    "settings_from_args",
]
