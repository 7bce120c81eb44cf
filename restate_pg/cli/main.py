"""The `restate-pg` command: migrate the schema, run workers, serve the ingress, or all at once in dev.

Every failure a user can fix (bad MODULE:APP, unreachable database, unmigrated schema) ends with
one line on stderr, `restate-pg: error: ...`, and exit status 2; failures while running exit 1.
Set RESTATE_PG_DEBUG=1 to get tracebacks for unexpected errors.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import os
import signal
import socket
import sys
import traceback
from collections.abc import Coroutine, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

from restate_pg.core.errors import RestatePgError
from restate_pg.observability.logs import LOG_FORMATS
from restate_pg.store.database import (
    ConfigurationError,
    check_reachable,
    describe_target,
    resolve_database_url,
    to_psycopg_conninfo,
    validate_schema_name,
)
from restate_pg.store.migrate import SCHEMA_ENV
from restate_pg.store.schema import DEFAULT_SCHEMA

__all__ = ["CLIError", "load_app", "main"]

PROG = "restate-pg"
DEBUG_ENV = "RESTATE_PG_DEBUG"
DEPLOYMENT_ENV = "RESTATE_PG_DEPLOYMENT"

from restate_pg.cli.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE, CLIError, check_arguments

_LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
#: Signals that stop a long-running command gracefully.
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


# --- MODULE:APP ------------------------------------------------------------------------------


def load_app(spec: str) -> Any:
    """Import `MODULE:APP` (the current directory first on the path) and return the App it names.

    MODULE is a dotted module name or a path to a `.py` file; APP may be dotted (`mod:obj.app`).

    Raises `CLIError` with a one-line explanation if the module cannot be imported, lacks the
    attribute, or the attribute is not a `restate_pg.App`.
    """
    module_name, sep, attr_path = spec.rpartition(":")
    if not sep or not module_name.strip() or not attr_path.strip():
        raise CLIError(f"expected MODULE:APP (for example 'myproject.services:app'), got {spec!r}")
    module_name, attr_path = module_name.strip(), attr_path.strip()

    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)

    try:
        if module_name.endswith(".py") or os.sep in module_name or "/" in module_name:
            module = _import_file(Path(module_name))
        else:
            module = importlib.import_module(module_name)
    except CLIError:
        raise
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (module_name == missing or module_name.startswith(missing + ".")):
            raise CLIError(
                f"cannot import {module_name!r}: no module named {missing!r} "
                f"(searched the current directory, {cwd}, and sys.path)"
            ) from exc
        raise CLIError(f"importing {module_name!r} failed: {exc}{_where(exc)}") from exc
    except SyntaxError as exc:
        where = f" (at {exc.filename}:{exc.lineno})" if exc.filename else ""
        raise CLIError(f"importing {module_name!r} failed: SyntaxError: {exc.msg}{where}") from exc
    except Exception as exc:
        raise CLIError(
            f"importing {module_name!r} failed: {type(exc).__name__}: {exc}{_where(exc)}"
        ) from exc

    obj: Any = module
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise CLIError(f"module {module_name!r} has no attribute {attr_path!r}") from None

    if not _is_app(obj):
        raise CLIError(
            f"{spec!r} is {_describe(obj)}, not a restate_pg.App "
            "(build one with restate_pg.app([...services]))"
        )
    return obj


def _import_file(path: Path) -> ModuleType:
    """Import a module given as a file path (`examples/app.py:app`), with its folder on sys.path."""
    path = path.resolve()
    if not path.is_file():
        raise CLIError(f"no such file: {path}")
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # so that the file can import its neighbours
    name = path.stem if path.name != "__init__.py" else path.parent.name
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CLIError(f"cannot import {str(path)!r}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _is_app(obj: object) -> bool:
    try:
        from restate_pg.api.app import App
    except ImportError:
        return hasattr(obj, "services")
    return isinstance(obj, App)


def _describe(obj: object) -> str:
    kind = type(obj)
    name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    return f"an instance of {name}"


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    frame = frames[-1]
    return f" (at {frame.filename}:{frame.lineno})"


# --- shared steps ----------------------------------------------------------------------------


def _database_url(args: argparse.Namespace) -> str:
    url = resolve_database_url(args.database_url)
    if url is None:
        hint = "" if args.command == "dev" else " (`restate-pg dev` can run an embedded PostgreSQL)"
        raise CLIError(f"no database configured: pass --database-url or set DATABASE_URL{hint}")
    try:
        to_psycopg_conninfo(url)
    except ConfigurationError as exc:
        raise CLIError(str(exc)) from exc
    return url


def _check_database(url: str, schema: str, *, migrated: bool) -> None:
    from restate_pg.store.migrate import check_migrated

    try:
        check_reachable(url)
        if migrated:
            check_migrated(url, schema)
    except RestatePgError as exc:
        raise CLIError(str(exc)) from exc


def _migrate(url: str, schema: str) -> None:
    from restate_pg.store.migrate import current_revision, upgrade

    where = describe_target(url)
    before = current_revision(url, schema)
    upgrade(url, schema)
    after = current_revision(url, schema)
    if before == after:
        _info(f"schema {schema!r} on {where} is up to date (revision {after})")
    elif before is None:
        _info(f"created schema {schema!r} on {where} at revision {after}")
    else:
        _info(f"migrated schema {schema!r} on {where} from revision {before} to {after}")


def _info(message: str) -> None:
    print(f"{PROG}: {message}", flush=True)


def _configure_logging(level: str, log_format: str = "text") -> None:
    from restate_pg.observability import logs

    logs.configure(level, log_format)


def _import_runtime(module: str, name: str) -> Any:
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise CLIError(
            f"this installation of restate-pg lacks {module}.{name} ({exc})", EXIT_FAILURE
        ) from exc


def _run_until_signalled(coro: Coroutine[Any, Any, Any]) -> int:
    """Run `coro`; SIGINT or SIGTERM cancels it (a graceful stop), a second one exits at once."""

    async def runner() -> int:
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(coro)
        received: list[int] = []

        def on_signal(signum: int) -> None:
            if received:
                print(f"{PROG}: stopping now", file=sys.stderr, flush=True)
                os._exit(128 + signum)
            received.append(signum)
            print(
                f"{PROG}: stopping (in-flight invocations are handed back to other workers; send the signal again to quit now)",
                file=sys.stderr,
                flush=True,
            )
            task.cancel()

        installed = []
        for signum in _STOP_SIGNALS:
            try:
                loop.add_signal_handler(signum, on_signal, signum)
                installed.append(signum)
            except (NotImplementedError, RuntimeError):  # Windows: Ctrl-C still interrupts
                pass
        try:
            await task
        except asyncio.CancelledError:
            if not received:
                raise
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)
        return 0

    return asyncio.run(runner())


def _serve(
    router: Any, *, host: str, port: int, log_level: str, admin_port: int | None = None, log_format: str = "text"
) -> int:
    import contextlib

    import fastapi
    import uvicorn

    from restate_pg.admin.sockets import listening_socket

    try:  # bound here, so that a port in use is one clear line rather than uvicorn's exit
        ingress_socket = listening_socket(host, port)
    except OSError as exc:
        raise CLIError(f"cannot listen on {host}:{port} ({exc.strerror})") from None
    api = fastapi.FastAPI(title="restate-pg ingress")
    api.include_router(router)
    # JSON logs: uvicorn's records go through the root logger's handler rather than its own
    log_config = None if log_format == "json" else uvicorn.config.LOGGING_CONFIG
    server = uvicorn.Server(uvicorn.Config(api, host=host, port=port, log_level=log_level, log_config=log_config))
    admin: uvicorn.Server | None = None
    admin_socket = _bind(host, admin_port) if admin_port is not None else None
    if admin_socket is not None:
        from restate_pg.admin import create_admin_app

        admin_api = create_admin_app(router.engine)
        admin = uvicorn.Server(uvicorn.Config(admin_api, log_level=log_level, lifespan="off", log_config=log_config))
        admin.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]  # the ingress server's
        _info(f"admin API on http://{host}:{admin_socket.getsockname()[1]}")

    async def serve_both() -> None:
        admin_task = asyncio.ensure_future(admin.serve(sockets=[admin_socket])) if admin is not None else None
        try:
            await server.serve(sockets=[ingress_socket])
        finally:
            if admin is not None and admin_task is not None:
                admin.should_exit = True
                await admin_task

    # uvicorn handles SIGINT and SIGTERM itself (stops accepting, drains, runs shutdown hooks),
    # then re-raises the signal to the handler it found. Ours only notes it, so a SIGTERM does
    # not kill the process before the caller's clean-up (say, of the embedded PostgreSQL), and a
    # graceful stop exits 0, as the worker's does.
    received: list[int] = []
    previous = {
        signum: signal.signal(signum, lambda signum, frame: received.append(signum))
        for signum in _STOP_SIGNALS
    }
    try:
        with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
            runner.run(serve_both())
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0 if server.started or received else EXIT_FAILURE


#: Engine settings the commands expose: (flag, keyword argument of the engine, help). Defaults
#: are the engine's; tests/test_cli.py checks that the numbers quoted here match them.
_ENGINE_OPTIONS: tuple[tuple[str, str, str], ...] = (
    (
        "--lease-seconds",
        "lease_seconds",
        "how long a silent worker keeps its invocations before others take them over (default: 15)",
    ),
    ("--poll-interval", "poll_interval", "how often to look for work when no NOTIFY arrives (default: 1)"),
    (
        "--inactivity-timeout",
        "inactivity_timeout",
        "how long a waiting invocation stays in memory before it suspends, unless its handler "
        "sets inactivity_timeout (default: 5)",
    ),
    ("--pool-size", "pool_size", "most database connections the process opens (default: 10)"),
)


def _engine_options(args: argparse.Namespace) -> dict[str, Any]:
    """The engine options given on the command line (the others keep the engine's defaults)."""
    return {
        keyword: getattr(args, keyword)
        for _, keyword, _ in _ENGINE_OPTIONS
        if getattr(args, keyword, None) is not None
    }


# --- commands --------------------------------------------------------------------------------


def _cmd_migrate(args: argparse.Namespace) -> int:
    url = _database_url(args)
    _check_database(url, args.schema, migrated=False)
    _migrate(url, args.schema)
    return 0


def _cmd_worker(args: argparse.Namespace) -> int:
    url = _database_url(args)
    _check_database(url, args.schema, migrated=True)
    app = load_app(args.app)
    run_worker = _import_runtime("restate_pg.worker", "run_worker")
    _configure_logging(args.log_level, args.log_format)
    options: dict[str, Any] = {
        "database_url": url,
        "schema": args.schema,
        "poll_only": args.poll_only,
        **_engine_options(args),
    }
    if args.concurrency is not None:
        options["concurrency"] = args.concurrency
    if args.deployment:
        options["deployment"] = args.deployment
    if args.metrics_port is not None:
        options.update(metrics_port=args.metrics_port, metrics_host=args.metrics_host)
    services = ", ".join(sorted(app.services)) or "no services"
    _info(f"worker for {services} on {describe_target(url)}, schema {args.schema!r}")
    return _run_until_signalled(run_worker(app, **options))


def _cmd_serve(args: argparse.Namespace) -> int:
    url = _database_url(args)
    _check_database(url, args.schema, migrated=True)
    app = load_app(args.app)
    create_router = _import_runtime("restate_pg.ingress", "create_router")
    _configure_logging(args.log_level, args.log_format)
    router = create_router(
        app,
        database_url=url,
        schema=args.schema,
        run_handlers=False,
        poll_only=args.poll_only,
        **_engine_options(args),
    )
    return _serve(router, host=args.host, port=args.port, log_level=args.log_level, log_format=args.log_format,
                  admin_port=args.admin_port)


def _cmd_operate(args: argparse.Namespace) -> int:
    """An operator command (invocations, services, deployments, kv) on a migrated database."""
    from restate_pg.core.errors import DatabaseUnavailable
    from restate_pg.store.console import QueryError

    url = _database_url(args)
    _check_database(url, args.schema, migrated=True)
    try:
        return int(args.run(url, args.schema, args))
    except (QueryError, DatabaseUnavailable) as exc:
        raise CLIError(str(exc), EXIT_FAILURE) from exc


def _cmd_dev(args: argparse.Namespace) -> int:
    app = load_app(args.app)  # before starting any database: a typo should fail fast
    create_router = _import_runtime("restate_pg.ingress", "create_router")
    url = resolve_database_url(args.database_url)
    embedded = None
    if url is None:
        from restate_pg.store.embedded import start_embedded

        try:
            embedded = start_embedded(args.data_dir)
        except RestatePgError as exc:
            raise CLIError(str(exc)) from exc
        url = embedded.url
        _info(f"embedded PostgreSQL in {embedded.data_dir} at {url}")
    else:
        url = _database_url(args)
        if args.data_dir is not None:
            _info("--data-dir ignored: a database is configured (--database-url or DATABASE_URL)")
    try:
        _check_database(url, args.schema, migrated=False)
        _migrate(url, args.schema)
        _configure_logging(args.log_level, args.log_format)
        router = create_router(
            app,
            database_url=url,
            schema=args.schema,
            run_handlers=True,
            poll_only=False,
            **({"deployment": args.deployment} if args.deployment else {}),
            **_engine_options(args),
        )
        admin_port = None if args.no_admin else args.admin_port
        return _serve(
            router, host=args.host, port=args.port, log_level=args.log_level, admin_port=admin_port,
            log_format=args.log_format,
        )
    finally:
        if embedded is not None:
            embedded.stop()


# --- argument parsing ------------------------------------------------------------------------


def _schema_name(value: str) -> str:
    try:
        return validate_schema_name(value)
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {value!r}") from None
    if not 0 < number < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value!r}")
    return number


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {value!r}")
    return number


def _bind(host: str, port: int) -> socket.socket | None:
    """A listening socket for the admin API, or None (with a warning) when the port is taken."""
    from restate_pg.admin.sockets import listening_socket

    try:
        return listening_socket(host, port)
    except OSError as exc:
        _info(f"admin API not served: cannot listen on {host}:{port} ({exc.strerror})")
        return None


def _port(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number (0-65535), got {value!r}")
    return number


class _Parser(argparse.ArgumentParser):
    """argparse, with errors in the same one-line form as everything else."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{PROG}: error: {message}\n")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("restate-pg")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the `restate-pg` command."""
    common = _Parser(add_help=False)
    database = common.add_argument_group("database")
    database.add_argument(
        "--database-url",
        metavar="URL",
        help="PostgreSQL to use, as postgresql://user:password@host:5432/dbname "
        "(default: $DATABASE_URL)",
    )
    database.add_argument(
        "--schema",
        metavar="NAME",
        type=_schema_name,
        default=os.environ.get(SCHEMA_ENV) or DEFAULT_SCHEMA,
        help=f"schema holding restate-pg's tables (default: ${SCHEMA_ENV}, else {DEFAULT_SCHEMA!r})",
    )

    parser = _Parser(
        prog=PROG,
        description="Restate-style durable execution, with PostgreSQL as the only infrastructure.",
        epilog=(
            "typical use:\n"
            "  restate-pg dev myproject.services:app      # everything in one process, for development\n"
            "  restate-pg migrate                         # once per deployment\n"
            "  restate-pg worker myproject.services:app   # run handlers (any number of processes)\n"
            "  restate-pg serve myproject.services:app    # HTTP ingress\n"
            "  restate-pg invocations cancel inv_1...     # steer an invocation (see --help)\n"
            "  restate-pg cron list                       # the cron schedules\n"
            "\n"
            f"Run '{PROG} COMMAND --help' for a command's options. "
            f"Set {DEBUG_ENV}=1 to see tracebacks of unexpected errors."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)

    def add_command(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name, parents=[common], help=summary, description=description
        )

    def add_app(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "app",
            metavar="MODULE:APP",
            help="the application: a module importable from the current directory (or the path "
            "of a .py file) and the name of its restate_pg.App, e.g. myproject.services:app",
        )

    def add_log_level(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "--log-level", choices=_LOG_LEVELS, default="info", help="logging verbosity (default: info)"
        )
        command.add_argument(
            "--log-format", choices=LOG_FORMATS, default="text",
            help="text lines, or one JSON object per line with the invocation's id, service, handler, "
            "key and attempt (default: text)",
        )

    def add_engine_options(command: argparse.ArgumentParser, *flags: str) -> None:
        tuning = command.add_argument_group("tuning")
        for flag, keyword, help_text in _ENGINE_OPTIONS:
            if flag in flags:
                if keyword == "pool_size":
                    tuning.add_argument(flag, dest=keyword, type=_positive_int, metavar="N", help=help_text)
                else:
                    tuning.add_argument(flag, dest=keyword, type=_positive_float, metavar="S", help=help_text)

    def add_deployment(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "--deployment", metavar="NAME", default=os.environ.get(DEPLOYMENT_ENV) or None,
            help="the application version this process runs, e.g. a release tag or commit: invocations "
            f"it starts are resumed only by workers of the same deployment (default: ${DEPLOYMENT_ENV}, "
            "else the app's own, else one derived from the handlers' code)",
        )

    def add_http(command: argparse.ArgumentParser) -> None:
        http = command.add_argument_group("http")
        http.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
        http.add_argument("--port", type=_port, default=8080, help="port to listen on (default: 8080)")

    poll_only_help = (
        "never LISTEN for wake-ups, poll instead (needed behind pgbouncer in transaction mode; "
        "adds up to the poll interval of latency)"
    )

    migrate = add_command(
        "migrate",
        "create or upgrade restate-pg's tables",
        "Create the schema and its tables, or upgrade them to this version of restate-pg. "
        "Safe to run repeatedly and from several processes at once.",
    )
    migrate.set_defaults(handler=_cmd_migrate)

    worker = add_command(
        "worker",
        "run the handlers of an application",
        "Claim and run invocations of the application's handlers until stopped. Start as many "
        "worker processes as you like; SIGINT or SIGTERM stops one gracefully.",
    )
    add_app(worker)
    worker.add_argument(
        "--concurrency",
        type=_positive_int,
        metavar="N",
        help="most invocations this process runs at once, not counting those waiting in memory for a "
        "timer or a result (default: the worker's own default)",
    )
    worker.add_argument("--poll-only", action="store_true", help=poll_only_help)
    add_deployment(worker)
    worker.add_argument(
        "--metrics-port", type=_port, metavar="PORT",
        help="serve Prometheus metrics at GET /metrics on this port (needs restate-pg[metrics])",
    )
    worker.add_argument(
        "--metrics-host", default="127.0.0.1", metavar="HOST",
        help="address of the metrics port (default: 127.0.0.1)",
    )
    add_engine_options(worker, *(flag for flag, _, _ in _ENGINE_OPTIONS))
    add_log_level(worker)
    worker.set_defaults(handler=_cmd_worker)

    serve = add_command(
        "serve",
        "serve the HTTP ingress (without running handlers)",
        "Accept calls and sends over HTTP and hand them to the workers through PostgreSQL. "
        "Handlers run in `restate-pg worker` processes.",
    )
    add_app(serve)
    add_http(serve)
    serve.add_argument("--poll-only", action="store_true", help=poll_only_help)
    add_engine_options(serve, "--poll-interval", "--pool-size")
    add_log_level(serve)
    serve.add_argument(
        "--admin-port", type=_port, default=None,
        help="also serve the admin API (cancel, kill, services, SQL, ...) on this port, e.g. 9070; protect "
        "it as you would any operator's interface (default: not served)",
    )
    serve.set_defaults(handler=_cmd_serve)

    dev = add_command(
        "dev",
        "migrate, then serve the ingress and run the handlers in one process",
        "For development: migrate the schema, then serve the HTTP ingress with an in-process "
        "worker. With no database configured, starts an embedded PostgreSQL that keeps its "
        "data in --data-dir.",
    )
    add_app(dev)
    add_http(dev)
    dev.add_argument(
        "--admin-port", type=_port, default=9070,
        help="port of the admin API (cancel, kill, ...), as Restate's (default: 9070; 0: any free port)",
    )
    dev.add_argument("--no-admin", action="store_true", help="do not serve the admin API")
    add_deployment(dev)
    dev.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="data directory of the embedded PostgreSQL, used when no database is configured "
        "(default: ./.restate-pg/pgdata)",
    )
    add_engine_options(dev, *(flag for flag, _, _ in _ENGINE_OPTIONS))
    add_log_level(dev)
    dev.set_defaults(handler=_cmd_dev)

    from restate_pg.cli import cron, invocations, kv, registry

    for name, summary, description, add_arguments in (
        ("invocations", "list, describe, cancel, kill, pause, resume, purge or restart invocations",
         "List and describe invocations, and steer them as Restate's admin API does (same status codes "
         "and messages), straight through the database.", invocations.add_arguments),
        ("services", "list the registered services", "The services workers registered.",
         registry.add_services_arguments),
        ("deployments", "list deployments, and mark them compatible for upgrades",
         "Deployments (application versions), their in-flight invocations, and which may resume whose.",
         registry.add_deployments_arguments),
        ("kv", "read and change the state of an object key", "The K/V state of virtual objects and workflows.",
         kv.add_arguments),
        ("cron", "list, pause, resume or delete cron schedules",
         "Look at and steer cron schedules, straight through the database.", cron.add_arguments),
    ):
        operator = commands.add_parser(name, help=summary, description=description)
        add_arguments(operator, [common], _Parser)
        operator.set_defaults(handler=_cmd_operate)

    from restate_pg.cli.sql import add_sql_command

    add_sql_command(add_command)

    return parser


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `restate-pg` command with `argv` (default: sys.argv[1:]); return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        check_arguments(args)
        return int(args.handler(args))
    except CLIError as exc:
        _error(str(exc))
        return exc.exit_code
    except RestatePgError as exc:
        _error(str(exc))
        return EXIT_FAILURE
    except BrokenPipeError:  # `restate-pg ... | head`: the reader has gone, so be quiet
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILURE
    except KeyboardInterrupt:
        if sys.stderr.isatty():
            print(file=sys.stderr)  # end the line the terminal's ^C is on
        return EXIT_INTERRUPTED
    except Exception as exc:
        if os.environ.get(DEBUG_ENV):
            raise
        _error(
            f"unexpected {type(exc).__name__}: {exc} (set {DEBUG_ENV}=1 to see the traceback)"
        )
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
