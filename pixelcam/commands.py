"""The commands behind `pixelcam ...`: each takes the parsed arguments, imports what it needs (so that the
CLI starts fast) and returns the exit code."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from pixelcam.errors import ConfigError

if TYPE_CHECKING:
    from pixelcam.storage import Location


class _LineProgress:
    """Progress for logs (stderr not a terminal): one line per 10 %, instead of a bar that vanishes."""

    def __init__(self, total: int, desc: str) -> None:
        self.total, self.desc, self.done, self.shown, self.start = total, desc, 0, -1, time.perf_counter()

    def update(self, n: int = 1) -> None:
        self.done += n
        tenth = 10 * self.done // max(self.total, 1)
        if tenth > self.shown:
            self.shown = tenth
            rate = self.done / max(time.perf_counter() - self.start, 1e-9)
            print(f"{self.desc}: {self.done}/{self.total} ({rate:.0f} img/s)", file=sys.stderr, flush=True)

    def close(self) -> None:
        pass

    def __enter__(self) -> _LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _progress(total: int, desc: str):
    """A tqdm bar on a terminal, periodic one-line progress in logs."""
    if not sys.stderr.isatty():
        return _LineProgress(total, desc)
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", file=sys.stderr)


def cmd_synth(args: argparse.Namespace) -> int:
    from pixelcam.data.synth import SynthConfig, generate_synthetic, is_current

    cfg = SynthConfig(
        per_class=args.per_class,
        size=args.size,
        seed=args.seed,
        **({"domains": args.domains} if args.domains else {}),
    )
    cfg.validate()
    if args.if_stale and is_current(args.out, cfg):
        print(f"{args.out} is up to date ({', '.join(cfg.origin(d) for d in cfg.domains)}); nothing written")
        return 0
    total = cfg.per_class * 2 * len(cfg.domains)
    start = time.perf_counter()
    with _progress(total, "synth") as bar:
        generate_synthetic(
            args.out,
            cfg,
            overwrite=args.overwrite or args.if_stale,
            progress=lambda p: bar.update(len(p)),
            workers=args.workers,
        )
    dt = time.perf_counter() - start
    print(
        f"wrote {total} images of {cfg.domains} ({cfg.size} px) to {args.out} in {dt:.1f} s "
        f"({total / dt:.0f} images/s)"
    )
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from pixelcam.data.inspect import format_summary, summarize
    from pixelcam.data.reader import open_dataset

    ds = open_dataset(args.dir, verify=args.verify)
    print(format_summary(ds, summarize(ds, decode_images=args.verify)))
    if args.verify:  # every check raised otherwise: say what passed, in one line
        print(
            f"verify: ok ({len(ds.files())} files: SHA-256 and image counts as the manifest lists, its hash "
            "matches, every image decodes, no image in two splits)"
        )
    return 0


def cmd_preview(args: argparse.Namespace) -> int:
    from pixelcam.data.preview import preview_grid
    from pixelcam.data.reader import open_dataset

    preview_grid(open_dataset(args.dir), args.out, per_class=args.per_class)
    print(f"wrote {args.out}")
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from pixelcam.data.merge import merge_datasets
    from pixelcam.data.reader import open_dataset

    out = merge_datasets(args.dirs, args.out, overwrite=args.overwrite)
    print(f"wrote {out}: domains {', '.join(open_dataset(out).domains)}")
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from pixelcam.data.ingest import ingest

    options = {
        k: getattr(args, k)
        for k in ("root", "folds", "labels", "domain", "classes", "seed", "valcl_fraction")
        if getattr(args, k, None) is not None
    }
    bar = None

    def progress(i: int, n: int) -> None:
        nonlocal bar
        if bar is None:
            bar = _progress(n, f"ingest {args.format}")
        bar.update(1)

    try:
        source = ingest(args.format, args.out, overwrite=args.overwrite, progress=progress, **options)
    finally:
        if bar is not None:
            bar.close()
    for note in source.notes:
        print(f"note: {note}")
    print(f"ingested {len(source.entries)} images of domain {source.domain!r} into {args.out}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from pixelcam.config import load_config
    from pixelcam.errors import Terminated, mark_kept
    from pixelcam.storage import Location
    from pixelcam.train.runner import train

    overrides = {
        "name": args.name,
        "storage": args.storage,
        "data": args.data,
        "source": args.source,
        "epochs": args.epochs,
        "num_workers": args.num_workers,
        "seed": args.seed,
    }
    if args.kind != "baseline":  # a pseudo-label method: its subcommand names it
        overrides.update(method=args.kind, pseudo_labels_from=args.pseudo_labels_from)
    cfg = load_config(args.config, **overrides)
    if args.kind == "baseline" and cfg.is_pixelcam:
        raise ConfigError(
            f"{args.config}: method: {cfg.method!r} is trained with `pixelcam train {cfg.method}`"
        )
    try:
        res = train(cfg, resume=args.resume, verbose=args.verbose)
    except (KeyboardInterrupt, Terminated) as exc:
        kept = f"the epochs it finished are kept in {Location(cfg.storage) / cfg.run_name()}"
        mark_kept(exc, f"{kept}; continue with the same command and --resume")
        raise
    m = res.metrics
    print(
        f"selected epoch {res.epoch + 1} ({cfg.selection}): valpx PxAP {m['valpx_pxap']:.2f}, "
        f"valcl CL {m['valcl_cl']:.1f}, tau {res.tau:.3f}\n"
        f"checkpoint: {res.checkpoint}\nrun: {res.run_dir}"
        + (f"\nMLflow run {res.mlflow_run_id}" if res.mlflow_run_id else "")
    )
    _warn_at_chance(cfg.method, cfg.source, m["valcl_cl"], res.checkpoint)
    return 0


def _warn_at_chance(method: str, source: str, valcl_cl: float, checkpoint: Location) -> None:
    """On stderr: the selected model is near chance on valcl (its PxAP then means little)."""
    from pixelcam.metrics.aggregate import near_chance
    from pixelcam.runtime.checkpoint import META_FILE

    classes = len((checkpoint / META_FILE).read_json()["class_names"])
    warning = near_chance(method, source, valcl_cl, classes)
    if warning:
        print(f"pixelcam: warning: {warning}", file=sys.stderr)


def _check_output(path: str | None, flag: str = "--json") -> None:
    """Before any work: an output file must be writable where asked (not a directory, parent existing)."""

    if path is None:
        return
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{flag} {path}: is a directory; give a file name such as {p / 'report.json'}")
    for parent in (p.parent, *p.parent.parents):
        if parent.exists() and not parent.is_dir():
            raise ConfigError(f"{flag} {path}: {parent} is a file, not a directory")
    if not p.parent.is_dir():
        raise ConfigError(f"{flag} {path}: the directory {p.parent} does not exist")


def _device(name: str):
    """A torch device from a --device flag ("auto": CUDA when available); a clear error for a bad one."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"--device {name}: expected cpu, cuda, cuda:N or auto") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: no CUDA device is available here")
    return device


def cmd_evaluate(args: argparse.Namespace) -> int:
    from pixelcam.evaluation.evaluate import evaluate, format_table

    _check_output(args.json)
    report = evaluate(
        args.checkpoint,
        args.data,
        args.domains,
        split=args.split,
        batch_size=args.batch_size,
        device=_device(args.device),
        precision=args.precision,
    )
    print(format_table(report))
    for warning in report.warnings:
        print(f"pixelcam: warning: {warning}", file=sys.stderr)
    if args.json:
        from pixelcam.storage.atomic import write_json_atomic

        write_json_atomic(Path(args.json), report.to_json())
        print(f"wrote {args.json}")
    return 0


def cmd_stain_sweep(args: argparse.Namespace) -> int:
    from pixelcam.evaluation.stain_sweep import format_sweep, stain_sweep

    _check_output(args.json)
    try:
        report = stain_sweep(
            args.checkpoint,
            args.data,
            args.domain,
            args.reference,
            args.stain,
            levels=args.levels,
            max_strength=args.max_strength,
            fit_images=args.fit_images,
            mode=args.mode,
        )
    except ValueError as exc:  # reference == domain, levels or strength out of range
        raise ConfigError(str(exc)) from exc
    print(format_sweep(report))
    if args.json:
        from pathlib import Path

        from pixelcam.storage.atomic import write_json_atomic

        write_json_atomic(Path(args.json), report)
        print(f"wrote {args.json}")
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    from pixelcam.study.runner import resume_study, run_study

    if args.command == "run":
        directory, _, spec = run_study(
            args.spec,
            storage=args.storage,
            early_stopping=not args.no_early_stopping,
            data=args.data,
            verbose=args.verbose,
        )
    else:
        directory, _, spec = resume_study(args.dir, verbose=args.verbose)
    return study_summary(directory, spec.mlflow_experiment())


def cmd_models(args: argparse.Namespace) -> int:
    from pixelcam.study.models import register_study_models

    done = register_study_models(args.study, args.alias, args.prefix)
    print(f"{len(done)} model(s) registered; use them as --model models:/NAME@{args.alias}")
    return 0


def study_summary(directory: Location, experiment: str) -> int:
    """Where a finished study's results are; exit code 1 (with the experiments named) when any experiment
    of it has no successful trial, so that a study whose trials all failed does not look like a success."""
    from pixelcam.study.context import StudyState
    from pixelcam.tracking import client, runs_url, tracking_uri

    state = StudyState(directory / "state.json")
    experiments = state.experiments()
    failed = sorted(k for k, rec in experiments.items() if rec.status != "ok")
    print(f"study directory: {directory} (ood.json, ood.csv)")
    dashboard = directory / "dashboard.html"
    if dashboard.is_file():
        where = "open it in a browser; works offline"
        if dashboard.is_remote:
            where = f"copy it out first, e.g. `pyarrow`/`aws s3 cp {dashboard} .`; works offline"
        print(f"dashboard: {dashboard} ({where})")
    uri = tracking_uri()
    if uri.startswith(("http://", "https://")):
        parent = state.parent_run_id  # a study that logged to this server: link its runs table
        where = runs_url(uri, client(uri).get_run(parent).info.experiment_id) if parent else uri
        print(f"MLflow: {where} (experiment {experiment})")
    else:
        print(f"MLflow: pixelcam ui --experiment {experiment}  (opens its runs table)")
    if failed:
        print(
            f"pixelcam: error: no successful trial in {len(failed)} experiment(s): {', '.join(failed)}",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    """`mlflow ui` on the project's tracking store until Ctrl-C; prints the runs-table URL once it answers."""
    import os
    import subprocess
    import urllib.request

    from pixelcam.tracking import client, runs_url, tracking_uri

    uri = tracking_uri()
    exp = client(uri).get_experiment_by_name(args.experiment)
    if exp is None:
        raise ConfigError(f"--experiment {args.experiment}: no such experiment in {uri}")
    base = f"http://{args.host}:{args.port}"
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", args.host]
    # MLflow 3's server also starts a job runner with 10 workers for its GenAI jobs, which pixelcam never
    # submits: off unless the user turned it on (a UI that starts faster and holds less memory)
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ}
    cmd += ["--port", str(args.port), "--workers", str(args.workers)]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 120
        while server.poll() is None and time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2).close()
                break
            except OSError:
                time.sleep(0.25)
        if server.poll() is not None or time.monotonic() >= deadline:
            raise ConfigError(f"--port {args.port}: mlflow ui did not start on {base} (port in use?)")
        print(f"MLflow UI: {runs_url(base, exp.experiment_id)}  (Ctrl-C stops it)", flush=True)
        return server.wait()
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=30)


def cmd_dashboard(args: argparse.Namespace) -> int:
    if bool(args.study) == bool(args.slides):
        raise ConfigError("dashboard: give a study (directory or run id) or --slides DIR, not both")
    if args.slides:
        from pixelcam.report.slides import build_slides_dashboard

        print(f"wrote {build_slides_dashboard(args.slides, args.out)}")
        return 0
    from pixelcam.report import build_dashboard

    out = build_dashboard(args.study, args.out, log_to_mlflow=not args.no_mlflow)
    print(f"wrote {out}")
    return 0
