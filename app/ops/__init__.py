"""Operations: health (``/up``, ``/ready``), metrics (``/metrics``), logs, Sentry, System page.

``init_app`` wires it all into an application; :func:`current_request_id` is for
code outside Flask's request hooks (websockets, git subprocesses) that wants
its logs tied to the request that started it.
"""

from __future__ import annotations

from flask import Flask

from app.ops.logs import bound_request_id, current_request_id, subprocess_env

__all__ = [
    "bound_request_id",
    "configure_logging",
    "current_request_id",
    "init_app",
    "subprocess_env",
]


def configure_logging(app: Flask) -> None:
    """JSON lines on stdout (text on a terminal); call before anything logs."""
    from app.ops import logs
    from app.ops.settings import OpsSettings

    settings = OpsSettings.load(app.config)
    logs.configure(str(app.config.get("LOG_LEVEL") or "INFO"), settings.log_format)


def init_app(app: Flask) -> None:
    """Instrument requests and the database engine; start Sentry when configured."""
    import click

    from app.ops import indexes, instrument, models, sentry  # noqa: F401 - register tables
    from app.ops.settings import OpsSettings

    settings = OpsSettings.load(app.config)
    state = instrument.OpsState(settings)
    app.extensions["quire.ops"] = state
    instrument.init_app(app, state)
    sentry.init_app(app, settings)

    @app.cli.command("status-record")
    def _status_record() -> None:
        """Run the status page's checks once and record them (for cron)."""
        from flask import current_app

        from app.ops import status

        application = current_app._get_current_object()  # type: ignore[attr-defined]
        results = status.run_checks(application)
        status.record(application, state, results, force=True)
        failing = sorted(k for k, r in results.items() if not r.get("ok"))
        click.echo("all ok" if not failing else "failing: " + ", ".join(failing))
