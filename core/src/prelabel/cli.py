"""The ``prelabel`` command line: list, serve, worker, check, create, start."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from prelabel.errors import PrelabelError
from prelabel.registry import discover
from prelabel.threads import use_passive_waits

__all__ = ["main"]

NAME_HELP = (
    "Backend name (an installed plugin); default: PRELABEL_BACKEND or the only one installed."
)


def _setup_logging() -> None:
    level = os.environ.get("PRELABEL_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every URL at INFO, presigned signatures included: keep it to warnings.
    logging.getLogger("httpx").setLevel(logging.WARNING)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Machine-learning backends for Label Studio."""
    # Before anything imports torch, here and in every process started from here.
    use_passive_waits()


@cli.command("list")
def list_backends() -> None:
    """List installed backends (reads package metadata; imports no plugin)."""
    found = discover()
    if not found:
        click.echo("No backends installed. Try: pip install prelabel-textcls")
        return
    width = max(len(n) for n in found)
    for name, info in sorted(found.items()):
        click.echo(f"{name:<{width}}  {info.dist or '?'} {info.version or ''}  ({info.target})")


@cli.command()
@click.argument("name", required=False)
@click.option("--host", default="0.0.0.0", show_default=True, help="Interface to bind.")
@click.option("--port", "-p", default=9090, show_default=True, type=int, help="Port to bind.")
@click.option(
    "--workers", "-w", default=1, show_default=True, type=int, help="gunicorn worker processes."
)
@click.option("--threads", default=8, show_default=True, type=int, help="Threads per worker.")
@click.option(
    "--timeout",
    default=300,
    show_default=True,
    type=int,
    help="Worker timeout (s); LS waits 100 s.",
)
@click.option("--dev", is_flag=True, help="Flask's development server instead of gunicorn.")
def serve(
    name: str | None, host: str, port: int, workers: int, threads: int, timeout: int, dev: bool
) -> None:
    """Serve a backend to Label Studio (gunicorn; --dev for Flask's server)."""
    _setup_logging()
    if name:
        os.environ["PRELABEL_BACKEND"] = name
    # Torch backends divide the CPU's threads among the serving workers; gunicorn itself reads
    # this variable as its default worker count, so the name keeps its usual meaning.
    os.environ["WEB_CONCURRENCY"] = str(1 if dev else workers)
    metrics_dir = None
    if workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # Must be set before prometheus_client is imported anywhere, so workers share samples.
        metrics_dir = tempfile.mkdtemp(prefix="prelabel-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    from prelabel.settings import CoreSettings, load_settings

    settings = load_settings(CoreSettings)
    worker = None
    if settings.job_runner == "process" and _trains(name or settings.backend):
        # Training in its own process keeps /health and /setup fast while a model trains.
        from prelabel._engine.supervisor import Supervisor

        worker = Supervisor([sys.executable, "-m", "prelabel", "worker"], name="training worker")
        worker.start()
    try:
        if dev:
            from prelabel._server import create_app

            create_app().run(host=host, port=port, threaded=True)
        else:
            from prelabel._server.gunicorn import run_gunicorn

            run_gunicorn(bind=f"{host}:{port}", workers=workers, threads=threads, timeout=timeout)
    finally:
        if worker is not None:
            worker.stop()
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _trains(name: str | None) -> bool:
    """Whether the backend to serve has ``fit`` (importing a plugin loads no model)."""
    from prelabel.backend import Backend
    from prelabel.registry import load_backend, select_backend

    return load_backend(select_backend(name)).fit is not Backend.fit


@cli.command()
@click.argument("name", required=False)
def worker(name: str | None) -> None:
    """Run training jobs, each in its own process (`serve` starts one worker; run your own
    with PRELABEL_JOB_RUNNER=external)."""
    _setup_logging()
    from prelabel._engine.runtime import make_backend
    from prelabel._engine.worker import run_worker
    from prelabel.settings import CoreSettings, load_settings

    settings = load_settings(CoreSettings)
    backend = make_backend(name, settings)  # validates the plugin and its settings now
    click.echo(f"prelabel worker for {backend.name}: waiting for jobs in {settings.model_dir}")
    run_worker(backend.name, settings)


@cli.command()
@click.argument("name")
@click.option(
    "--verbose", "-v", is_flag=True, help="Show each check's troubleshooting text on failure."
)
def check(name: str, verbose: bool) -> None:
    """Run the conformance kit against an installed backend."""
    from prelabel.testing import run_checks

    failures = 0
    for outcome in run_checks(name):
        mark = {"passed": "ok  ", "failed": "FAIL", "skipped": "skip"}[outcome.status]
        click.echo(f"{mark} {outcome.check}" + (f": {outcome.message}" if outcome.message else ""))
        if outcome.status == "failed":
            failures += 1
            if verbose and outcome.troubleshooting:
                click.echo("     " + outcome.troubleshooting.replace("\n", "\n     "))
    if failures:
        raise click.ClickException(f"{failures} check(s) failed")
    click.echo(f"{name}: all checks passed")


@cli.command()
@click.argument("name")
@click.option(
    "--directory",
    "-d",
    type=click.Path(path_type=Path),
    default=None,
    help="Plugin layout: where to create the package (default: ./prelabel-NAME).",
)
@click.option(
    "--plugin",
    "layout",
    flag_value="plugin",
    help="An installable backend plugin package (the native contract).",
)
@click.option(
    "--compat",
    "layout",
    flag_value="compat",
    help="A directory with model.py on prelabel.compat.LabelStudioMLBase (the SDK tutorial's).",
)
def create(name: str, directory: Path | None, layout: str | None) -> None:
    """Create a backend: a compat project directory NAME, or a plugin package.

    Without --plugin/--compat, NAME is the directory of a compat project (as in Label Studio's
    tutorial: `prelabel create my_ml_backend`, then `prelabel start my_ml_backend`); giving
    --directory, which only plugins take, selects the plugin layout.
    """
    if layout is None:
        layout = "plugin" if directory is not None else "compat"
    if layout == "compat":
        if directory is not None:
            raise click.UsageError(
                "--directory is for --plugin; a compat project is created at NAME."
            )
        from prelabel.compat.scaffold import create_project

        target = create_project(Path(name))
        click.echo(
            f"Created {target}. Next: edit {target / 'model.py'}, then\n  prelabel start {target} -p 9090"
        )
        return
    from prelabel._scaffold import create_plugin

    target = create_plugin(name, directory or Path(f"prelabel-{name}"))
    click.echo(f"Created {target}. Next:\n  pip install -e {target}\n  prelabel check {name}")


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--host", default="0.0.0.0", show_default=True, help="Interface to bind.")
@click.option("--port", "-p", default=9090, show_default=True, type=int, help="Port to bind.")
@click.option(
    "--workers", "-w", default=1, show_default=True, type=int, help="gunicorn worker processes."
)
@click.option("--threads", default=8, show_default=True, type=int, help="Threads per worker.")
@click.option("--timeout", default=300, show_default=True, type=int, help="Worker timeout (s).")
@click.option(
    "--basic-auth-user",
    envvar=["BASIC_AUTH_USER", "ML_SERVER_BASIC_AUTH_USER"],
    default=None,
    help="Require this basic-auth user (as set in LS's model form).",
)
@click.option(
    "--basic-auth-pass",
    envvar=["BASIC_AUTH_PASS", "ML_SERVER_BASIC_AUTH_PASS"],
    default=None,
    help="The basic-auth password.",
)
@click.option(
    "--model-dir",
    envvar="MODEL_DIR",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="State, versions and media cache [default: PRELABEL_MODEL_DIR, else DIRECTORY/data/models].",
)
@click.option("--class", "class_name", default=None, help="Model class, if model.py has several.")
@click.option("--dev", is_flag=True, help="Flask's development server instead of gunicorn.")
def start(
    directory: Path,
    host: str,
    port: int,
    workers: int,
    threads: int,
    timeout: int,
    basic_auth_user: str | None,
    basic_auth_pass: str | None,
    model_dir: Path | None,
    class_name: str | None,
    dev: bool,
) -> None:
    """Serve DIRECTORY/model.py (a LabelStudioMLBase model) without installing it."""
    _setup_logging()
    from prelabel.compat.server import make_app, run_gunicorn
    from prelabel.settings import CoreSettings, load_settings

    overrides: dict[str, Any] = {"job_runner": "thread"}
    if basic_auth_user or basic_auth_pass:
        overrides.update(basic_auth_user=basic_auth_user, basic_auth_pass=basic_auth_pass)
    if model_dir is None and "PRELABEL_MODEL_DIR" not in os.environ:
        model_dir = directory / "data" / "models"
    if model_dir is not None:
        overrides["model_dir"] = model_dir.resolve()
    settings = load_settings(CoreSettings, **overrides)
    # Model code written for the SDK saves its files under $MODEL_DIR.
    os.environ["MODEL_DIR"] = str(settings.model_dir)
    if dev:
        make_app(directory, settings, class_name=class_name).run(
            host=host, port=port, threaded=True
        )
    else:
        run_gunicorn(
            directory,
            settings,
            bind=f"{host}:{port}",
            workers=workers,
            threads=threads,
            timeout=timeout,
            class_name=class_name,
        )


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the ``prelabel`` console script."""
    try:
        return cli.main(args=argv, prog_name="prelabel", standalone_mode=True)
    except PrelabelError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
