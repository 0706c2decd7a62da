"""The commands behind `pixelcam ...`: each takes the parsed arguments, imports what it needs (so that the
CLI starts fast) and returns the exit code."""

from __future__ import annotations

import argparse
import sys
import time

from pixelcam.errors import ConfigError


def _progress(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", disable=None, file=sys.stderr)


def cmd_synth(args: argparse.Namespace) -> int:
    from pixelcam.data.synth import SynthConfig, generate_synthetic

    cfg = SynthConfig(
        per_class=args.per_class,
        size=args.size,
        seed=args.seed,
        **({"domains": args.domains} if args.domains else {}),
    )
    cfg.validate()
    total = cfg.per_class * 2 * len(cfg.domains)
    start = time.perf_counter()
    with _progress(total, "synth") as bar:
        generate_synthetic(
            args.out,
            cfg,
            overwrite=args.overwrite,
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
    if args.kind == "pixelcam":
        overrides.update(method="pixelcam", pseudo_labels_from=args.pseudo_labels_from)
    cfg = load_config(args.config, **overrides)
    if args.kind == "baseline" and cfg.method == "pixelcam":
        raise ConfigError(f"{args.config}: method: 'pixelcam' is trained with `pixelcam train pixelcam`")
    res = train(cfg, resume=args.resume)
    m = res.metrics
    print(
        f"selected epoch {res.epoch + 1} ({cfg.selection}): valpx PxAP {m['valpx_pxap']:.2f}, "
        f"valcl CL {m['valcl_cl']:.1f}, tau {res.tau:.3f}\n"
        f"checkpoint: {res.checkpoint}\nrun: {res.run_dir}"
        + (f"\nMLflow run {res.mlflow_run_id}" if res.mlflow_run_id else "")
    )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:

    from pixelcam.evaluation.evaluate import evaluate, format_table

    report = evaluate(args.checkpoint, args.data, args.domains, split=args.split, batch_size=args.batch_size)
    print(format_table(report))
    if args.json:
        from pathlib import Path

        from pixelcam.io import write_json_atomic

        write_json_atomic(Path(args.json), report)
        print(f"wrote {args.json}")
    return 0


def cmd_stain_sweep(args: argparse.Namespace) -> int:
    from pixelcam.evaluation.stain_sweep import format_sweep, stain_sweep

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
        )
    except ValueError as exc:  # reference == domain, levels or strength out of range
        raise ConfigError(str(exc)) from exc
    print(format_sweep(report))
    if args.json:
        from pathlib import Path

        from pixelcam.io import write_json_atomic

        write_json_atomic(Path(args.json), report)
        print(f"wrote {args.json}")
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    from pixelcam.study.runner import resume_study, run_study

    if args.command == "run":
        directory, _, spec = run_study(
            args.spec, storage=args.storage, early_stopping=not args.no_early_stopping, data=args.data
        )
    else:
        directory, _, spec = resume_study(args.dir)
    from pixelcam.tracking import tracking_uri

    print(f"study directory: {directory} (ood.json, ood.csv)")
    if (directory / "dashboard.html").is_file():
        print(f"dashboard: {directory / 'dashboard.html'} (open it in a browser; works offline)")
    uri = tracking_uri()
    if uri.startswith(("http://", "https://")):
        print(f"MLflow: open {uri} (experiment {spec.mlflow_experiment()})")
    else:
        print(f"MLflow: mlflow ui --backend-store-uri {uri}")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    from pixelcam.report import build_dashboard

    out = build_dashboard(args.study, args.out, log_to_mlflow=not args.no_mlflow)
    print(f"wrote {out}")
    return 0
