"""The ``lmtune`` command: run, validate, inspect and export studies.

User errors exit with code 2 and one message on stderr (no traceback); Ctrl-C exits with 130 after marking the
running trial FAILED ("interrupted"), and running the same command again resumes, the interrupted trial from its
last checkpoint. Inspecting commands open storage read-only.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from lmtune.config import DEFAULT_STORAGE, StudySpec, check_machine, load_study_file
from lmtune.exceptions import ConfigError, LmtuneError, StudyNotFoundError
from lmtune.executors import RetryPolicy, make_executor
from lmtune.executors.fused import fused_executor_for
from lmtune.executors.ref import FileObjective
from lmtune.options import StudyOptions
from lmtune.progress import StudyProgress, configure_logging
from lmtune.storage import Storage, get_storage
from lmtune.study import Study, check_compatible, create_study, load_study, provenance
from lmtune.trial import TrialState

__all__ = ["main"]

F = TypeVar("F", bound=Callable[..., Any])
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def _fail(message: str, code: int = 2) -> None:
    click.echo(f"lmtune: error: {message}", err=True)
    sys.exit(code)


def user_errors(function: F) -> F:
    """Turn lmtune's own errors into one line on stderr and exit code 2."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except LmtuneError as exc:
            _fail(str(exc))

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
@click.version_option(package_name="lmtune")
def main(verbose: bool) -> None:
    """lmtune: find the best hyperparameters for training and fine-tuning language models."""
    configure_logging(verbose)


def _storage_url(given: str | None, default: str = DEFAULT_STORAGE) -> str:
    """The --storage URL, or the default when the option is absent (an empty one is a mistake, not the default)."""
    if given is None:
        return default
    if not given.strip():
        raise ConfigError(
            "--storage: must not be empty; give a URL such as sqlite:///lmtune.db, or leave it out"
        )
    return given


def _open_storage(url: str | None) -> Storage:
    """An existing lmtune database, opened only to read: inspecting never creates tables or files."""
    url = _storage_url(url)
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        path = Path(url[len("sqlite:///") :].split("?", 1)[0])
        if not path.is_file():
            raise ConfigError(f"no database at {str(path)!r}; give --storage URL or run a study first")
    return get_storage(url, read_only=True)


# run / validate ---------------------------------------------------------------------------------------------------
def _open_study(spec: StudySpec, storage_url: str) -> Study:
    if "mode=ro" in storage_url.partition("?")[2]:
        raise ConfigError(
            f"storage {storage_url!r} is opened read-only (?mode=ro), but running a study writes trials; "
            f"remove ?mode=ro"
        )
    storage = get_storage(storage_url)
    try:
        info = storage.get_study(spec.name)
    except StudyNotFoundError:
        return create_study(
            direction=spec.direction,
            sampler=spec.sampler,
            storage=storage,
            study_name=spec.name,
            load_if_exists=True,
            space=spec.space,
            scheduler=spec.scheduler,
            attrs={
                "provenance": provenance(
                    spec.sampler.seed, {"sampler": spec.sampler.describe(), **spec.provenance}
                )
            },
            options=_study_options(spec),
        )
    check_compatible(info, spec.direction, spec.space)
    return load_study(
        spec.name, storage, sampler=spec.sampler, scheduler=spec.scheduler, options=_study_options(spec)
    )


def _study_options(spec: StudySpec) -> StudyOptions:
    """The study file's heartbeat, retry and checkpoint settings."""
    execution = spec.execution
    return StudyOptions(
        heartbeat_interval=execution.heartbeat.interval,
        grace_period=execution.heartbeat.grace_period,
        retry=RetryPolicy(execution.max_retries) if execution.max_retries else None,
        checkpoint_budget=spec.checkpoint_budget,
    )


def _optimize(
    spec: StudySpec,
    study: Study,
    total: int | None,
    workers: int | None,
    callbacks: list[Any],
    wait_for_running: bool,
) -> None:
    """Run the study's trials here (fused in groups, if asked), in a local process pool or on Ray, as the file (or
    --workers) says."""
    execution = spec.execution if workers is None else dataclasses.replace(spec.execution, workers=workers)
    fused = fused_executor_for(execution, spec.task)
    executor = make_executor(execution)
    options: dict[str, Any] = {
        "timeout": spec.timeout,
        "total_trials": total,
        "max_failed_trials": spec.max_failed_trials,
        "callbacks": callbacks,
        "wait_for_running": wait_for_running,
    }
    if fused is not None:
        fused.optimize(study, **options)
    elif executor is None:
        study.optimize(spec.objective, **options)
    else:  # trial processes load the objective (or task) from the file themselves
        modules = spec.task.process_modules() if spec.task is not None else ()
        executor.optimize(study, FileObjective(str(spec.path.resolve()), modules), **options)


def _enqueue_new(study: Study, configs: list[dict[str, Any]]) -> int:
    """Enqueue the file's configurations that no unfailed trial holds yet (a rerun adds nothing twice)."""
    held = {
        json.dumps(dict(r.params), sort_keys=True) for r in study.trials if r.state is not TrialState.FAILED
    }
    added = 0
    for params in configs:
        key = json.dumps(params, sort_keys=True)
        if key not in held:
            study.enqueue(params)
            held.add(key)
            added += 1
    return added


def _progress(spec: StudySpec, study: Study, total: int | None) -> StudyProgress:
    """Live progress on a terminal, plain lines elsewhere, named with the task's metric."""
    metric = getattr(spec.task, "metric", None) or "value"
    return StudyProgress(study, total, timeout=spec.timeout, metric=metric)


def _trackers(spec: StudySpec) -> list[Any]:
    """The study file's experiment trackers as callbacks (each library loads only when enabled)."""
    if not spec.trackers:
        return []
    from lmtune.integrations.trackers import make_trackers

    return make_trackers(spec.trackers, spec.path.parent)


def _print_best(study: Study) -> None:
    finished = study.get_trials(FINISHED)
    best = study.history().best()
    click.echo(f"study {study.study_name!r}: {len(finished)} finished trials in {study.storage.url}")
    if best is None:
        click.echo("no COMPLETE trial yet")
        return
    click.echo(f"best trial {best.number}: value {best.value:.6g}")
    for name, value in best.params.items():
        click.echo(f"  {name}: {value}")


def _run_options(function: F) -> F:
    """The arguments `run` and `worker` share."""
    for option in reversed(
        [
            click.argument("study_file", type=click.Path(dir_okay=False, path_type=Path)),
            click.option("--storage", help="Storage URL; overrides the file's `storage:`."),
            click.option(
                "--n-trials", type=click.IntRange(min=1), help="Finished trials the study should hold."
            ),
            click.option(
                "--workers", type=click.IntRange(min=1), help="Trials at once, each in its own process."
            ),
        ]
    ):
        function = option(function)
    return function


@main.command()
@_run_options
@user_errors
def run(study_file: Path, storage: str | None, n_trials: int | None, workers: int | None) -> None:
    """Create or resume the study of STUDY_FILE and run the trials it still misses."""
    spec = load_study_file(study_file)
    check_machine(spec)
    study = _open_study(spec, _storage_url(storage, spec.storage))
    _enqueue_new(study, spec.enqueue)
    total = n_trials or spec.n_trials
    trackers = _trackers(spec)
    try:
        with _progress(spec, study, total) as progress:
            _optimize(spec, study, total, workers, [progress, *trackers], wait_for_running=total is not None)
    except KeyboardInterrupt:
        done = len(study.get_trials(FINISHED))
        click.echo(
            f"interrupted after {done} finished trials; run the same command again to resume", err=True
        )
        sys.exit(130)
    finally:
        study.close()
    _print_best(study)
    summary = None
    if study.history().best() is not None:
        from lmtune.analysis.finish import finish_study

        summary = finish_study(spec, study)
        if summary is not None:
            click.echo(json.dumps(summary, indent=2, default=str))
    if trackers:
        from lmtune.integrations.trackers import log_study_result

        log_study_result(trackers, study, summary)


@main.command()
@_run_options
@user_errors
def worker(study_file: Path, storage: str | None, n_trials: int | None, workers: int | None) -> None:
    """Join the study of STUDY_FILE from another shell or machine (creating it if absent) and run trials until
    it holds n_trials finished ones and none is running; then exit 0."""
    spec = load_study_file(study_file)
    total = n_trials or spec.n_trials
    if total is None:
        raise ConfigError(
            f"{study_file}: a worker needs `n_trials:` in the file or --n-trials, to know when to stop"
        )
    check_machine(spec)
    study = _open_study(spec, _storage_url(storage, spec.storage))
    try:
        with _progress(spec, study, total) as progress:
            _optimize(spec, study, total, workers, [progress, *_trackers(spec)], wait_for_running=True)
    except KeyboardInterrupt:
        click.echo(
            "worker interrupted; its running trials are failed, and the next run resumes them", err=True
        )
        sys.exit(130)
    finally:
        study.close()
    done = len(study.get_trials(FINISHED))
    click.echo(f"study {study.study_name!r}: {done} finished trials; worker done")


@main.command()
@click.argument("study_file", type=click.Path(dir_okay=False, path_type=Path))
@user_errors
def validate(study_file: Path) -> None:
    """Check STUDY_FILE without running anything."""
    spec = load_study_file(study_file)
    check_machine(spec)
    space = "define-by-run" if spec.space is None else f"{len(spec.space)} parameters"
    click.echo(f"{study_file}: OK (study {spec.name!r}, {spec.direction}, {space}, storage {spec.storage})")


# inspection ---------------------------------------------------------------------------------------------------
@main.command()
@click.argument("study", required=False)
@click.option("--storage", help=f"Storage URL (default {DEFAULT_STORAGE}).")
@user_errors
def status(study: str | None, storage: str | None) -> None:
    """Show trials by state for one study, or for every study in the storage."""
    store = _open_storage(storage)
    names = [study] if study else [info.name for info in store.list_studies()]
    if not names:
        click.echo(f"no studies in {store.url}")
    for name in names:
        s = load_study(name, store)
        counts = {state.value: 0 for state in TrialState}
        for record in s.trials:
            counts[record.state.value] += 1
        best = s.history().best()
        states = ", ".join(f"{k.lower()} {v}" for k, v in counts.items() if v)
        best_text = "no complete trial" if best is None else f"best {best.value:.6g} (trial {best.number})"
        click.echo(f"{name} [{s.direction}]: {len(s.trials)} trials ({states or 'none'}); {best_text}")


@main.group()
def studies() -> None:
    """List or delete studies."""


@studies.command("list")
@click.option("--storage", help=f"Storage URL (default {DEFAULT_STORAGE}).")
@user_errors
def studies_list(storage: str | None) -> None:
    """List the studies in the storage."""
    store = _open_storage(storage)
    for info in store.list_studies():
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.created_at or 0))
        click.echo(f"{info.name}\t{info.direction}\t{info.n_trials} trials\tcreated {created}")


@studies.command("delete")
@click.argument("study")
@click.option("--storage", help=f"Storage URL (default {DEFAULT_STORAGE}).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@user_errors
def studies_delete(study: str, storage: str | None, yes: bool) -> None:
    """Delete STUDY and all its trials."""
    _open_storage(storage).get_study(study)
    if not yes:
        click.confirm(f"delete study {study!r} and all its trials?", abort=True)
    get_storage(_storage_url(storage)).delete_study(study)
    click.echo(f"deleted {study!r}")


@main.command()
@click.argument("study")
@click.option("--storage", help=f"Storage URL (default {DEFAULT_STORAGE}).")
@click.option("--json", "as_json", is_flag=True, help="Print only JSON: {number, value, params}.")
@user_errors
def best(study: str, storage: str | None, as_json: bool) -> None:
    """Print the best trial of STUDY."""
    s = load_study(study, _open_storage(storage))
    record = s.history().best()
    if record is None:
        raise ConfigError(f"study {study!r} has no COMPLETE trial yet")
    if as_json:
        click.echo(
            json.dumps({"number": record.number, "value": record.value, "params": dict(record.params)})
        )
    else:
        _print_best(s)


@main.command()
@click.argument("study")
@click.option("--storage", help=f"Storage URL (default {DEFAULT_STORAGE}).")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), required=True, help="Output format.")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="File (default stdout)."
)
@user_errors
def export(study: str, storage: str | None, fmt: str, output: Path | None) -> None:
    """Export all trials of STUDY as CSV or JSON."""
    s = load_study(study, _open_storage(storage))
    text = s.export_csv() if fmt == "csv" else s.export_json()
    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
    else:
        if not output.parent.is_dir():
            raise ConfigError(f"--output: folder {str(output.parent)!r} does not exist")
        try:
            output.write_text(text if text.endswith("\n") else text + "\n")
        except OSError as exc:
            raise ConfigError(
                f"--output: cannot write {str(output)!r}: {exc.strerror}; choose another path"
            ) from None
        click.echo(f"wrote {len(s.trials)} trials to {output}", err=True)


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@click.argument("url")
@user_errors
def db_upgrade(url: str) -> None:
    """Migrate the database at URL to this lmtune's schema version."""
    from lmtune.storage.sql import upgrade_schema

    old, new = upgrade_schema(url)
    click.echo(
        f"{url}: schema version {old} -> {new}" if old != new else f"{url}: schema version {new}, up to date"
    )


# analysis and monitoring --------------------------------------------------------------------------------------------
@main.command()
@click.argument("study")
@click.option("--storage", help=f"Storage URL (default {DEFAULT_STORAGE}).")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("report.html"),
    show_default=True,
    help="The HTML file to write.",
)
@click.option(
    "--importance",
    "importance_method",
    type=click.Choice(["fanova", "marginal"]),
    default="fanova",
    show_default=True,
    help="The main importance method (the other quick one is always shown).",
)
@user_errors
def report(study: str, storage: str | None, output: Path, importance_method: str) -> None:
    """Write one self-contained HTML report of STUDY (opens offline)."""
    from lmtune.analysis.report import build_report

    store = _open_storage(storage)
    path = build_report(study, store, output, importance_method=importance_method)
    from lmtune.analysis.terminal import study_summary

    click.echo(study_summary(study, store))
    click.echo(f"wrote {path}")


@main.command()
@click.option("--storage", help=f"Storage URL (default {DEFAULT_STORAGE}).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; 0.0.0.0 exposes it.")
@click.option(
    "--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="0 picks a free one."
)
@click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    help="Another name the page may be opened by (repeatable; '*' accepts any). By default only localhost, "
    "127.0.0.1 and --host are answered, so other sites cannot read the studies through DNS rebinding.",
)
@user_errors
def dashboard(storage: str | None, host: str, port: int, allow_hosts: tuple[str, ...]) -> None:
    """Serve a live, read-only web page over the studies in the storage."""
    from lmtune.dashboard import serve

    store = _open_storage(storage)
    try:
        serve(store, host=host, port=port, allowed_hosts=allow_hosts)
    except OSError as exc:  # a busy port, an address this machine does not have, a name that does not resolve
        raise ConfigError(
            f"--host {host} --port {port}: cannot listen there ({exc.strerror or exc}); choose another port "
            f"(0 picks a free one) or a local address such as 127.0.0.1"
        ) from None


if __name__ == "__main__":
    main()
