"""Command line: `python -m server {serve,migrate,createdb,check,createadmin,seed,dispatcher,worker,cron,reconcile,
backup,restore}`."""

import argparse
import asyncio
import dataclasses
import logging
import sys

from handlers.base import MAX_BODY_LIMIT
from models import bind
from models.actions.accounts import create_admin
from models.demo_data import load_demo_data
from models.foundation import metrics
from models.foundation.errors import ApiError
from models.foundation.settings import ConfigurationError, load_settings
from server.app import configure_logging, init_error_reporting, make_app, start_embedded_schedule, start_embedded_sweep
from server.deploy_check import deploy_problems
from server.migrations import migrate
from server.pipeline import start_pipeline
from server.shutdown import DrainingHTTPServer, shut_down, wait_for_signal
from server.startup import (
    StartupError,
    check_database,
    check_migrated,
    check_redis,
    ensure_database,
    explain,
    port_problem,
    wait_for,
    where,
)
from workers import cron
from workers.backup import BackupError, BackupSchedule, restore_backup, take_backup
from workers.dispatcher import Dispatcher
from workers.outages import Stopping
from workers.periodic import SCHEDULE, reconcile_payments, reconcile_refunds, reconcile_transfers
from workers.transport import RedisTransport
from workers.worker import PipelineForkWorker, PipelineWorker, run_worker

log = logging.getLogger("serviceman")
# What metrics and error reports call each command's process; the others are one-off commands.
PROCESS_KINDS = {"serve": "web", "dispatcher": "dispatcher", "worker": "worker", "cron": "cron"}


def cmd_migrate(settings, args):
    db = bind(settings.database_url)
    check_database(settings.database_url)
    applied = migrate(db)
    print(f"migrations applied: {', '.join(applied) if applied else 'none (up to date)'}")


def cmd_createdb(settings, args):
    created = ensure_database(settings.database_url)
    state = {True: "created", False: "exists", None: "SQLite creates the file when first used"}[created]
    print(f"database {where(settings.database_url)}: {state}")


def cmd_check(settings, args):
    if args.deploy:
        return cmd_check_deploy(settings)
    bind(settings.database_url)
    check_migrated(settings.database_url)
    if settings.redis_url:
        check_redis(settings.redis_url)
    print(
        f"ok: database {where(settings.database_url)} migrated; Redis "
        f"{where(settings.redis_url) + ' reachable' if settings.redis_url else 'not used (embedded pipeline)'}"
    )


def cmd_check_deploy(settings):
    """The production checklist (server/deploy_check.py): every problem on a line of its own, exit 1."""
    problems = deploy_problems(settings)
    for problem in problems:
        print(f"deploy: {problem}")
    if problems:
        sys.exit(f"check --deploy: {len(problems)} problem(s) (README: Deployment)")
    print("ok: no deployment problem found")


def cmd_backup(settings, args):
    directory = args.dir or settings.backup_dir
    if not directory:
        sys.exit("backup: say where backups go (BACKUP_DIR or --dir)")
    try:
        path = take_backup(settings.database_url, directory, settings.backup_keep_count, settings.backup_keep_days)
    except BackupError as exc:
        sys.exit(f"backup: {exc}")
    print(f"backup: {path} ({path.stat().st_size} bytes)")


def cmd_restore(settings, args):
    """pg_restore into a new or empty database (created when missing), then migrate it."""
    target = args.database_url or settings.database_url
    ensure_database(target)
    db = bind(target)
    check_database(target)
    with db.connection_context():
        tables = db.get_tables()
    if tables:
        sys.exit(
            f"restore: the database {where(target)} already has {len(tables)} table(s): restore into a new "
            "or empty database (e.g. --database-url postgresql://.../serviceman_restored), then point "
            "DATABASE_URL at it"
        )
    try:
        restore_backup(args.file, target)
    except BackupError as exc:
        sys.exit(f"restore: {exc}")
    with db.connection_context():
        applied = migrate(db)
    print(
        f"restore: {args.file} restored into {where(target)}; migrations applied: "
        f"{', '.join(applied) if applied else 'none (up to date)'}"
    )


def cmd_createadmin(settings, args):
    bind(settings.database_url)
    check_migrated(settings.database_url)
    try:
        user = create_admin(
            settings, email=args.email, password=args.password, first_name=args.first_name, last_name=args.last_name
        )
    except ApiError as exc:
        problems = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in exc.fields.items())
        sys.exit(f"createadmin: {problems or exc.message}")
    print(f"admin created: {user.email} (id {user.id})")


def cmd_seed(settings, args):
    if settings.is_production:
        sys.exit("seed: demo data is never loaded with ENV=production")
    bind(settings.database_url)
    check_migrated(settings.database_url)
    for line in load_demo_data(settings):
        print(line)


def cmd_serve(settings, args):
    if args.port:  # links to itself (the local checkout's) must name the port it really listens on
        settings = dataclasses.replace(settings, port=args.port)
    bind(settings.database_url, settings.db_pool_size)
    check_migrated(settings.database_url)
    if settings.redis_url:
        check_redis(settings.redis_url)

    async def main():
        # SIGTERM (a deploy) and SIGINT end the process gracefully: server/shutdown.py.
        signalled = wait_for_signal()
        app = make_app(settings, bind_database=False)  # bound and checked above
        timers = [start_embedded_sweep(settings), *start_embedded_schedule(settings)]
        # No xheaders: X-Forwarded-* count only from TRUSTED_PROXIES (handlers/web/proxies.py).
        # Endpoints stream their bodies and refuse them past their own limit; this caps the rest.
        server = DrainingHTTPServer(app, max_body_size=MAX_BODY_LIMIT)
        try:
            server.listen(settings.port, address=args.host)
        except OSError as exc:
            problem = port_problem(exc, args.host, settings.port)
            if problem is None:
                raise
            raise StartupError(problem) from exc
        log.info("Serviceman listening on http://%s:%s (docs at /api/docs/)", args.host, settings.port)
        reason = await signalled
        await shut_down(
            server, app, [timer for timer in timers if timer is not None], settings.shutdown_grace_seconds, reason
        )

    asyncio.run(main())


def _pipeline_process(settings):
    """Bind the database and configure the Redis transport for a dispatcher, worker or cron process;
    returns (transport, stopping), or (None, stopping) when a stop came while waiting for a server.

    A database or Redis that is down or restarting is waited for (STARTUP_WAIT_SECONDS, for ever by
    default): a deploy or a crash loop must not turn an outage into exited processes. A set-up
    mistake (no migrations, a wrong password or URL) still stops the process at once."""
    if not settings.redis_url:
        sys.exit("this process needs REDIS_URL (without it, `serve` runs the whole pipeline in-process)")
    stopping = Stopping().install()
    bind(settings.database_url, settings.db_pool_size)
    for check, url in ((check_migrated, settings.database_url), (check_redis, settings.redis_url)):
        if not wait_for(check, url, settings.startup_wait_seconds, stopping):
            return None, stopping
    return start_pipeline(settings, RedisTransport(settings.redis_url)).transport, stopping


def cmd_dispatcher(settings, args):
    transport, stopping = _pipeline_process(settings)
    if transport is not None:
        # SIGTERM/SIGINT: the read in hand is finished and acknowledged, then the dispatcher leaves
        Dispatcher(transport.redis, transport, batch=args.batch).run_forever(stop=stopping)


def cmd_cron(settings, args):
    try:  # a backup schedule that cannot work stops the cron process at start-up, not silently at 2 am
        backups = BackupSchedule.from_settings(settings)
    except BackupError as exc:
        raise StartupError(str(exc)) from exc
    transport, stopping = _pipeline_process(settings)
    if transport is not None:
        cron.run_cron(transport, SCHEDULE, stopping, **({"backups": backups} if backups else {}))


def cmd_reconcile(settings, args):
    bind(settings.database_url)
    # Without Redis the events it records wait in the outbox for the web process's sweep.
    start_pipeline(settings, RedisTransport(settings.redis_url) if settings.redis_url else None)
    print(f"reconcile payments: {reconcile_payments(older_than=args.older_than)}")
    print(f"reconcile transfers: {reconcile_transfers(older_than=args.older_than)}")
    print(f"reconcile refunds: {reconcile_refunds(older_than=args.older_than)}")


def cmd_worker(settings, args):
    transport, _stopping = _pipeline_process(settings)
    if transport is None:
        return
    worker_class = PipelineForkWorker if args.fork else PipelineWorker
    run_worker(
        lambda: worker_class(transport.queues, connection=transport.redis),
        transport.redis,
        burst=args.burst,
        logging_level=settings.log_level,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m server", description="Serviceman")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply database migrations")
    sub.add_parser("createdb", help="create the PostgreSQL database of DATABASE_URL if it does not exist")
    check = sub.add_parser(
        "check", help="check that the database is reachable and migrated and Redis (if used) reachable"
    )
    check.add_argument(
        "--deploy",
        action="store_true",
        help="the production checklist instead: every weak or missing setting, exit 1 if any",
    )
    backup = sub.add_parser("backup", help="pg_dump the database (custom format) into BACKUP_DIR, prune old backups")
    backup.add_argument("--dir", default=None, help="write here instead of BACKUP_DIR")
    restore = sub.add_parser("restore", help="pg_restore a backup into a new or empty database, then migrate it")
    restore.add_argument("file", help="a file written by `backup`")
    restore.add_argument(
        "--database-url", default=None, help="the database to restore into (created if missing; default DATABASE_URL)"
    )
    admin = sub.add_parser("createadmin", help="create an admin account")
    admin.add_argument("--email", required=True)
    admin.add_argument("--password", required=True)
    admin.add_argument("--first-name", default="Admin")
    admin.add_argument("--last-name", default="")
    sub.add_parser("seed", help="load demo data (development only, idempotent)")
    dispatcher = sub.add_parser("dispatcher", help="read the event stream and queue deliveries (needs REDIS_URL)")
    dispatcher.add_argument("--batch", type=int, default=100, metavar="N", help="at most N events per delivery job")
    worker = sub.add_parser("worker", help="run RQ delivery and email jobs (needs REDIS_URL)")
    worker.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    worker.add_argument(
        "--fork",
        action="store_true",
        help="RQ's forking Worker: each job in a new process (slower; isolates a job that leaks)",
    )
    sub.add_parser("cron", help="enqueue the periodic jobs on their schedule (needs REDIS_URL)")
    reconcile = sub.add_parser(
        "reconcile", help="re-verify PENDING payments, open refunds and unsettled transfers with Paystack now"
    )
    reconcile.add_argument(
        "--older-than",
        type=int,
        default=None,
        metavar="SECONDS",
        help="only payments older than this (default PAYMENT_RECONCILE_AFTER)",
    )
    serve = sub.add_parser("serve", help="serve the API, websockets and docs")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=None)
    args = parser.parse_args(argv)
    # check --deploy lists production's refusals with the rest instead of stopping at them
    deploy_check = args.command == "check" and args.deploy
    try:
        settings = load_settings(refuse_production_problems=False) if deploy_check else load_settings()
    except ConfigurationError as exc:
        sys.exit(f"configuration error: {exc}")

    configure_logging(settings.log_level, settings.log_format)
    kind = PROCESS_KINDS.get(args.command, args.command)
    metrics.enable(kind, bool(settings.metrics_token))
    init_error_reporting(settings, kind)
    commands = {
        "migrate": cmd_migrate,
        "createdb": cmd_createdb,
        "check": cmd_check,
        "createadmin": cmd_createadmin,
        "seed": cmd_seed,
        "serve": cmd_serve,
        "dispatcher": cmd_dispatcher,
        "worker": cmd_worker,
        "cron": cmd_cron,
        "reconcile": cmd_reconcile,
        "backup": cmd_backup,
        "restore": cmd_restore,
    }
    try:
        commands[args.command](settings, args)
    except StartupError as exc:
        sys.exit(f"{args.command}: {exc}")
    except KeyboardInterrupt:  # Ctrl-C (or honcho stopping us) is how a server is meant to end
        sys.exit(130)
    except Exception as exc:
        problem = explain(exc, settings)
        if problem is None:
            raise
        sys.exit(f"{args.command}: {problem}")


if __name__ == "__main__":
    main()
