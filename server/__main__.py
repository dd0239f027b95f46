"""Command line: `python -m server {serve,migrate,createadmin,seed}`."""
import argparse
import asyncio
import logging
import sys

from models import bind
from server.settings import ConfigurationError, load_settings

log = logging.getLogger("serviceman")


def cmd_migrate(settings, args):
    from server.migrations import migrate

    applied = migrate(bind(settings.database_url))
    print(f"migrations applied: {', '.join(applied) if applied else 'none (up to date)'}")


def cmd_createadmin(settings, args):
    from models.actions.accounts import create_admin
    from server.errors import ApiError

    bind(settings.database_url)
    try:
        user = create_admin(settings, email=args.email, password=args.password,
                            first_name=args.first_name, last_name=args.last_name)
    except ApiError as exc:
        sys.exit(f"createadmin: {exc.message} {exc.fields or ''}")
    print(f"admin created: {user.email} (id {user.id})")


def cmd_seed(settings, args):
    from server.demo_data import load_demo_data

    if settings.is_production:
        sys.exit("seed: demo data is never loaded with ENV=production")
    bind(settings.database_url)
    for line in load_demo_data(settings):
        print(line)


def cmd_serve(settings, args):
    import tornado.httpserver

    from server.app import make_app, start_embedded_sweep

    async def main():
        app = make_app(settings)
        start_embedded_sweep(settings)
        server = tornado.httpserver.HTTPServer(app, xheaders=True)
        server.listen(args.port or settings.port, address=args.host)
        log.info("Serviceman listening on http://%s:%s (docs at /api/docs/)", args.host, args.port or settings.port)
        await asyncio.Event().wait()

    asyncio.run(main())


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m server", description="Serviceman")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply database migrations")
    admin = sub.add_parser("createadmin", help="create an admin account")
    admin.add_argument("--email", required=True)
    admin.add_argument("--password", required=True)
    admin.add_argument("--first-name", default="Admin")
    admin.add_argument("--last-name", default="")
    sub.add_parser("seed", help="load demo data (development only, idempotent)")
    serve = sub.add_parser("serve", help="serve the API, websockets and docs")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        sys.exit(f"configuration error: {exc}")
    from server.app import configure_logging, init_error_reporting

    configure_logging(settings.log_level)
    init_error_reporting(settings)
    {"migrate": cmd_migrate, "createadmin": cmd_createadmin, "seed": cmd_seed, "serve": cmd_serve}[args.command](
        settings, args)


if __name__ == "__main__":
    main()
