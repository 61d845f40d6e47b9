"""The ``prelabel`` command line: list, serve, worker, predict, doctor, check, create, start,
report."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from prelabel._logging import setup_logging
from prelabel.errors import PrelabelError
from prelabel.registry import discover
from prelabel.threads import use_passive_waits

if TYPE_CHECKING:
    from prelabel._engine.supervisor import Supervisor

__all__ = ["main"]

NAME_HELP = (
    "Backend name (an installed plugin); default: PRELABEL_BACKEND or the only one installed."
)


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
@click.option(
    "-p", "--port", default=9090, show_default=True, envvar="PORT", help="Port to bind (or PORT)."
)
@click.option(
    "--workers", "-w", default=1, show_default=True, type=int, help="gunicorn worker processes."
)
@click.option("--threads", default=8, show_default=True, type=int, help="Threads per worker.")
@click.option("--timeout", default=300, show_default=True, help="Worker timeout (s); LS: 100 s.")
@click.option("--dev", is_flag=True, help="Flask's development server instead of gunicorn.")
def serve(
    name: str | None, host: str, port: int, workers: int, threads: int, timeout: int, dev: bool
) -> None:
    """Serve a backend to Label Studio (gunicorn; --dev for Flask's server); what it needs is
    checked first, so a mistake is one line on stderr and exit status 2."""
    setup_logging()
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
    worker: Supervisor | None = None

    def start_training_worker() -> None:
        # Only once the port is ours: a second server must not work off a live one's queue.
        nonlocal worker
        if settings.job_runner == "process" and backend.trainable:
            # Training in its own process keeps /health and /setup fast while a model trains.
            from prelabel._engine.supervisor import Supervisor

            worker = Supervisor(
                [sys.executable, "-m", "prelabel", "worker"], name="training worker"
            )
            worker.start()

    try:
        from prelabel._server.preflight import preflight
        from prelabel.settings import CoreSettings, load_settings

        settings = load_settings(CoreSettings)
        backend = preflight(name or settings.backend, settings, host=host, port=port, load=not dev)
        if dev:
            from prelabel._server import create_app

            app = create_app()
            start_training_worker()
            app.run(host=host, port=port, threaded=True)
        else:
            from prelabel._server.gunicorn import run_gunicorn

            run_gunicorn(
                bind=f"{host}:{port}",
                workers=workers,
                threads=threads,
                timeout=timeout,
                when_ready=start_training_worker,
            )
    finally:
        if worker is not None:
            worker.stop()
        if metrics_dir is not None:
            # Whoever called serve in-process must not inherit a directory that is gone.
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
            shutil.rmtree(metrics_dir, ignore_errors=True)


@cli.command()
@click.argument("name", required=False)
def worker(name: str | None) -> None:
    """Run training jobs, each in its own process (`serve` starts one worker; run your own
    with PRELABEL_JOB_RUNNER=external)."""
    setup_logging()
    from prelabel._engine.diskcheck import require_writable
    from prelabel._engine.runtime import make_backend
    from prelabel._engine.worker import run_worker
    from prelabel.settings import CoreSettings, load_settings

    settings = load_settings(CoreSettings)
    require_writable(settings.model_dir)
    backend = make_backend(name, settings)  # validates the plugin and its settings now
    click.echo(f"prelabel worker for {backend.name}: waiting for jobs in {settings.model_dir}")
    run_worker(backend.name, settings)


@cli.command()
@click.argument("name", required=False)
@click.option(
    "--project",
    "project_id",
    type=int,
    help="Label Studio project id: predict its tasks through the LS API (LABEL_STUDIO_URL, "
    "LABEL_STUDIO_API_KEY), posting predictions back; with --export, the project whose "
    "trained version and labeling config to use.",
)
@click.option(
    "--export",
    "export_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An LS JSON export to pre-annotate into an LS import file instead.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --export: the import file to write [default: EXPORT.predictions.json].",
)
@click.option(
    "--label-config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="With --export and no --project: the labeling config XML.",
)
@click.option("--all-tasks", is_flag=True, help="Also tasks that already have annotations.")
@click.option("--batch-size", type=click.IntRange(1), help="Tasks per predict call.")
@click.option("--concurrency", type=click.IntRange(1), help="Predict calls in flight at once.")
def predict(
    name: str | None,
    project_id: int | None,
    export_file: Path | None,
    out: Path | None,
    label_config: Path | None,
    all_tasks: bool,
    batch_size: int | None,
    concurrency: int | None,
) -> None:
    """Pre-annotate many tasks in batches (resumable; Ctrl-C stops cleanly).

    Live: tasks of an LS project without a prediction of the served version are predicted
    and posted back. Offline: an LS JSON export becomes an LS import file with predictions.
    """
    if export_file is None and project_id is None:
        raise click.UsageError("Give --project ID (a live LS project) or --export FILE.")
    if export_file is not None and project_id is None and label_config is None:
        raise click.UsageError(
            "An LS export does not carry its labeling config: give --label-config FILE "
            "(Settings → Labeling Interface → Code in LS), or --project ID to read it from LS."
        )
    setup_logging()
    from prelabel._engine.bulk_run import PredictCommand

    command = PredictCommand(project_id, export_file, out, label_config, not all_tasks)
    message, stopped = command.run(name, batch_size=batch_size, concurrency=concurrency)
    click.echo(message)
    if stopped:
        sys.exit(130)


@cli.command()
@click.argument("name", required=False)
@click.option("--ls-url", help="Label Studio's URL as this backend sees it [LABEL_STUDIO_URL].")
@click.option("--token", help="Personal access token or legacy token [LABEL_STUDIO_API_KEY].")
@click.option("--project", "project_id", type=int, help="An LS project: its media and labels.")
@click.option(
    "--backend-url", help="This backend as LS reaches it (http://host:9090): LS's view, timings."
)
@click.option("--json", "as_json", is_flag=True, help="The report as JSON, for scripts.")
def doctor(
    name: str | None,
    ls_url: str | None,
    token: str | None,
    project_id: int | None,
    backend_url: str | None,
    as_json: bool,
) -> None:
    """Check what stands between this backend and Label Studio, each problem with its fix.

    In order: LS reachable from here, the token, LS accepting the backend, a project's media,
    its labels against the backend's, and /health and /setup within LS's 1 s and 3 s. Exits 1
    when a check fails.
    """
    from prelabel._doctor import DoctorOptions, run_doctor
    from prelabel._engine.runtime import make_backend
    from prelabel.settings import CoreSettings, load_settings

    settings = load_settings(CoreSettings)
    backend = make_backend(name, settings)
    backend.load()
    report = run_doctor(backend, settings, DoctorOptions(ls_url, token, project_id, backend_url))
    click.echo(report.as_json() if as_json else report.as_text(color=sys.stdout.isatty()))
    sys.exit(0 if report.ok else 1)


@cli.command()
@click.argument("name")
@click.option(
    "--verbose", "-v", is_flag=True, help="Show each check's troubleshooting text on failure."
)
def check(name: str, verbose: bool) -> None:
    """Run the conformance kit against an installed backend."""
    from logging.handlers import BufferingHandler

    from prelabel.testing import run_checks

    # The checks drive a server with recorded requests, some refused on purpose, for a project
    # that is not real: its warnings are noise while every check passes, and worth reading
    # when one fails. Held back until then (Python would otherwise print them on stderr).
    held = BufferingHandler(capacity=10_000)
    held.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(held)
    failures = 0
    try:
        for outcome in run_checks(name):
            mark = {"passed": "ok  ", "failed": "FAIL", "skipped": "skip"}[outcome.status]
            message = f": {outcome.message}" if outcome.message else ""
            click.echo(f"{mark} {outcome.check}{message}")
            if outcome.status == "failed":
                failures += 1
                if verbose and outcome.troubleshooting:
                    click.echo("     " + outcome.troubleshooting.replace("\n", "\n     "))
    finally:
        logging.getLogger().removeHandler(held)
    if failures:
        for record in held.buffer:
            click.echo(held.format(record), err=True)
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
@click.option(
    "-p", "--port", default=9090, show_default=True, envvar="PORT", help="Port to bind (or PORT)."
)
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
    setup_logging()
    from prelabel._server.preflight import check_address, warn_if_open
    from prelabel.compat.server import make_app, run_gunicorn
    from prelabel.settings import CoreSettings, load_settings

    check_address(host, port)  # one line, before gunicorn retries and gives up

    overrides: dict[str, Any] = {"job_runner": "thread"}
    if basic_auth_user or basic_auth_pass:
        overrides.update(basic_auth_user=basic_auth_user, basic_auth_pass=basic_auth_pass)
    if model_dir is None and "PRELABEL_MODEL_DIR" not in os.environ:
        model_dir = directory / "data" / "models"
    if model_dir is not None:
        overrides["model_dir"] = model_dir.resolve()
    settings = load_settings(CoreSettings, **overrides)
    warn_if_open(settings, host)
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


@cli.command()
@click.option(
    "--model-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="The backend's store [default: PRELABEL_MODEL_DIR].",
)
@click.option(
    "--export",
    "export",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="A Label Studio JSON export to report on instead of the store.",
)
@click.option("--project", default=None, help="Only this project (12.1795807427, or 12).")
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("prelabel-report.html"),
    show_default=True,
    help="The HTML file to write.",
)
def report(model_dir: Path | None, export: Path | None, project: str | None, output: Path) -> None:
    """Write an HTML report: learning curve, acceptance, annotator bias, scores, training."""
    from prelabel.report import report_from_export, report_from_store, write_report

    if export is not None:
        if model_dir is not None or project is not None:
            raise click.UsageError(
                "--export reads one project's export; drop --model-dir/--project."
            )
        reports = [report_from_export(export)]
    else:
        from prelabel.settings import CoreSettings, load_settings

        settings = load_settings(CoreSettings)
        reports = report_from_store(
            model_dir or settings.model_dir, project, database_url=settings.database_url
        )
    click.echo(f"Wrote {write_report(reports, output)} ({len(reports)} project(s)).")


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the ``prelabel`` console script."""
    try:
        return cli.main(args=argv, prog_name="prelabel", standalone_mode=True)
    except PrelabelError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
