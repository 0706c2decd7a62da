"""The `pixelcam` command line: `pixelcam data|train|evaluate|study ...`."""

from __future__ import annotations

import argparse
import errno
import os
import re
import signal
import sys
from collections.abc import Sequence
from typing import Any

from pixelcam import __version__, commands, slide_commands
from pixelcam.config import PSEUDO_LABEL_METHODS
from pixelcam.errors import USER_ERRORS, Terminated, describe_os_error

CHECKPOINT_HELP = (
    "checkpoint dir, run dir (its selected checkpoint), or a registered model: models:/NAME@ALIAS, "
    "models:/NAME/VERSION (`pixelcam models register`)"
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pixelcam",
        description="Weakly-supervised localization for histology "
        "(PixelCAM) on Ray: data, training, studies, dashboards.",
    )
    p.add_argument("--version", action="version", version=f"pixelcam {__version__}")
    groups = p.add_subparsers(dest="group", required=True, metavar="COMMAND")

    _add_data(groups)
    _add_train(groups)
    _add_study(groups)
    _add_dashboard(groups)
    _add_evaluate(groups)
    _add_stain_sweep(groups)
    _add_predict(groups)
    _add_models(groups)
    _add_ui(groups)
    return p


def _add_data(groups: Any) -> None:
    """`pixelcam data ...`."""
    data = groups.add_parser("data", help="create, ingest, inspect and preview Parquet patch datasets")
    dsub = data.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")

    s = dsub.add_parser("synth", help="generate the bundled synthetic histology domains")
    s.add_argument("--out", required=True, help="dataset directory to create")
    s.add_argument("--domains", nargs="+", help="synthetic domains (default: synth-colon synth-lymph)")
    s.add_argument(
        "--per-class", type=positive_int, default=150, help="images per class and domain (default 150)"
    )
    s.add_argument("--size", type=positive_int, default=128, help="tile size in pixels (default 128)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument(
        "--workers", type=positive_int, default=None, help="rendering processes (default: all cores)"
    )
    s.add_argument("--overwrite", action="store_true", help="replace an existing dataset directory")
    s.add_argument(
        "--if-stale",
        action="store_true",
        help="write only when --out is missing or was written by another renderer version or settings "
        "(then replace it); a current dataset is left as it is",
    )
    s.set_defaults(fn=commands.cmd_synth)

    ss = dsub.add_parser(
        "synth-slide", help="a synthetic pyramidal whole-slide TIFF and its ROI mask, from a domain's patches"
    )
    ss.add_argument("--data", required=True, help="dataset directory whose test patches tile the tissue")
    ss.add_argument("--domain", required=True)
    ss.add_argument("--out", required=True, help="slide file to write (NAME.tif; the mask is NAME_mask.tif)")
    ss.add_argument("--size", type=positive_int, default=8192, help="level-0 side in pixels (default 8192)")
    ss.add_argument("--patch", type=positive_int, default=None, help="cell size (default: the patches' own)")
    ss.add_argument("--seed", type=nonnegative_int, default=0)
    ss.set_defaults(fn=slide_commands.cmd_synth_slide)

    i = dsub.add_parser("inspect", help="counts per domain/split/class, mask coverage, image sizes")
    i.add_argument("dir")
    i.add_argument("--verify", action="store_true", help="also check file hashes and decode every image")
    i.set_defaults(fn=commands.cmd_inspect)

    v = dsub.add_parser("preview", help="write a PNG grid of example patches with their ROI outlined")
    v.add_argument("dir")
    v.add_argument("--out", required=True, help="PNG file to write")
    v.add_argument("--per-class", type=positive_int, default=4)
    v.set_defaults(fn=commands.cmd_preview)

    mg = dsub.add_parser("merge", help="combine datasets (e.g. glas + camelyon16) into one for OOD studies")
    mg.add_argument("dirs", nargs="+", help="dataset directories (domain names must not repeat)")
    mg.add_argument("--out", required=True, help="dataset directory to create")
    mg.add_argument("--overwrite", action="store_true")
    mg.set_defaults(fn=commands.cmd_merge)

    _add_ingest(dsub)


def _add_ingest(dsub: Any) -> None:
    """`pixelcam data ingest glas|camelyon16|folder ...`."""
    g = dsub.add_parser("ingest", help="convert a real dataset (glas, camelyon16, folder) into the schema")
    fsub = g.add_subparsers(dest="format", required=True, metavar="FORMAT")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", required=True, help="dataset directory to create")
    common.add_argument("--overwrite", action="store_true")
    f = fsub.add_parser(
        "glas", parents=[common], help="Warwick GlaS release (train_N.bmp, *_anno.bmp, Grade.csv)"
    )
    f.add_argument(
        "--root", required=True, help="the release directory (or the root the fold files' paths start at)"
    )
    f.add_argument(
        "--folds",
        default=None,
        help="a published fold directory (train/ valcl/ valpx/ test/, encoding.yaml beside it); without "
        "it the split is drawn from the release by --seed",
    )
    f.add_argument("--seed", type=int, default=0, help="fixes the valpx/valcl draw (without --folds)")
    f.add_argument("--valcl-fraction", type=float, default=None)
    f.add_argument("--domain", default=None, help="domain name (default glas)")
    f = fsub.add_parser(
        "camelyon16", parents=[common], help="CAMELYON16 512x512 patches with WSOL fold files"
    )
    f.add_argument("--root", required=True, help="directory the fold files' paths are relative to")
    f.add_argument(
        "--folds", required=True, help="published fold directory: train/ [valcl/] [valpx/] test/ (as is)"
    )
    f.add_argument("--seed", type=int, default=0, help="fixes the valcl/valpx carve when the folds have none")
    f.add_argument("--domain", default=None, help="domain name (default camelyon16)")
    f = fsub.add_parser(
        "folder", parents=[common], help="images + optional masks + CSV image,label,split[,mask]"
    )
    f.add_argument("--root", required=True, help="directory the CSV's paths are relative to")
    f.add_argument("--labels", required=True, help="CSV with columns image,label,split[,mask]")
    f.add_argument("--domain", required=True)
    f.add_argument(
        "--classes", default=None, help="comma-separated class names, label 0 first (default normal,cancer)"
    )
    g.set_defaults(fn=commands.cmd_ingest)


def _add_train(groups: Any) -> None:
    """`pixelcam train ...`."""
    t = groups.add_parser("train", help="train a baseline WSOL model or PixelCAM on Ray Train")
    tsub = t.add_subparsers(dest="kind", required=True, metavar="KIND")
    tcommon = argparse.ArgumentParser(add_help=False)
    tcommon.add_argument("--config", required=True, help="YAML training config (see studies/train/)")
    tcommon.add_argument(
        "--resume", action="store_true", help="continue the run of this name from its latest checkpoint"
    )
    tcommon.add_argument("--name", help="run name under --storage (default: METHOD-BACKBONE-SOURCE)")
    tcommon.add_argument(
        "--storage", help="where runs and checkpoints go: a directory (default: runs/) or s3://bucket/prefix"
    )
    tcommon.add_argument("--data", help="dataset directory (overrides the config)")
    tcommon.add_argument("--source", help="source domain (overrides the config)")
    tcommon.add_argument("--epochs", type=positive_int)
    tcommon.add_argument("--num-workers", type=positive_int, dest="num_workers")
    tcommon.add_argument("--seed", type=int)
    tcommon.add_argument(
        "--verbose", action="store_true", help="show Ray's own output (otherwise in its session logs)"
    )
    b = tsub.add_parser("baseline", parents=[tcommon], help="CAM, DeepMIL, GradCAM++, LayerCAM or SAT")
    b.set_defaults(fn=commands.cmd_train)
    helps = {
        "pixelcam": "PixelCAM on pseudo-labels of a trained baseline",
        "negev": "NEGEV: a U-Net decoder on a trained baseline's frozen classifier, on its pseudo-labels",
    }
    for method in PSEUDO_LABEL_METHODS:
        b = tsub.add_parser(method, parents=[tcommon], help=helps.get(method, f"{method} on pseudo-labels"))
        b.add_argument(
            "--pseudo-labels-from",
            required=True,
            dest="pseudo_labels_from",
            help="the baseline: a checkpoint dir, a run dir (its selected checkpoint), an MLflow run id or a "
            "registered model (models:/NAME@ALIAS)",
        )
        b.set_defaults(fn=commands.cmd_train)


def _add_study(groups: Any) -> None:
    """`pixelcam study ...`."""
    st = groups.add_parser("study", help="tune, select and evaluate models over source->target pairings")
    ssub = st.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")
    r = ssub.add_parser("run", help="run a study spec (YAML, see studies/)")
    r.add_argument("spec")
    r.add_argument(
        "--storage",
        help="parent of the study directory (default: the spec's storage): a path every node mounts "
        "(NFS/EFS/PVC), or an object store URI (s3://bucket/studies, gs://...) the study is written to",
    )
    r.add_argument("--data", help="dataset directory or URI (s3://, gs://) overriding the spec's `data`")
    r.add_argument("--no-early-stopping", action="store_true", help="FIFO instead of ASHA")
    r.add_argument("--verbose", action="store_true", help="also show Ray's own output (workers, Tune, Data)")
    r.set_defaults(fn=commands.cmd_study)
    r = ssub.add_parser("resume", help="continue an interrupted study from its directory")
    r.add_argument("dir", help="the study directory, or its URI (s3://bucket/studies/NAME)")
    r.add_argument("--verbose", action="store_true", help="also show Ray's own output (workers, Tune, Data)")
    r.set_defaults(fn=commands.cmd_study)


def _add_models(groups: Any) -> None:
    """`pixelcam models ...`."""
    m = groups.add_parser("models", help="a study's selected models in MLflow's model registry")
    msub = m.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")
    r = msub.add_parser(
        "register",
        help="log each tuned model of a study as an MLflow LoggedModel, register it and set an alias",
    )
    r.add_argument("study", help="the study directory, or its URI (s3://bucket/studies/NAME)")
    r.add_argument("--alias", required=True, type=alias, help="the alias the versions get, e.g. champion")
    r.add_argument("--prefix", help="registered names are PREFIX-METHOD-SOURCE (default: the study's name)")
    r.set_defaults(fn=commands.cmd_models)


def _add_dashboard(groups: Any) -> None:
    """`pixelcam dashboard ...`."""
    d = groups.add_parser("dashboard", help="a study's self-contained HTML dashboard, built from MLflow")
    d.add_argument(
        "study", nargs="?", help="study directory (studies-runs/NAME) or the study's MLflow parent run id"
    )
    d.add_argument("--slides", help="instead of a study: a `pixelcam predict` output directory")
    d.add_argument("--out", required=True, help="HTML file to write")
    d.add_argument("--no-mlflow", action="store_true", help="do not log the figures to the parent run")
    d.set_defaults(fn=commands.cmd_dashboard)


def _add_ui(groups: Any) -> None:
    """`pixelcam ui ...`."""
    u = groups.add_parser("ui", help="MLflow's UI on the tracking store, opened on an experiment's runs")
    u.add_argument("--experiment", default="pixelcam", help="experiment whose runs table to open")
    u.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    u.add_argument("--port", type=port, default=5000, help="port to listen on")
    u.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="server processes (default 1: one user's viewer; MLflow's own default of 4 starts in twice the "
        "time and CPU)",
    )
    u.set_defaults(fn=commands.cmd_ui)


def _add_evaluate(groups: Any) -> None:
    """`pixelcam evaluate ...`."""
    e = groups.add_parser("evaluate", help="PxAP, CL and TP*/FN*/TN*/FP* of a checkpoint on test splits")
    e.add_argument("--checkpoint", "--model", dest="checkpoint", required=True, help=CHECKPOINT_HELP)
    e.add_argument("--data", required=True, help="dataset directory")
    e.add_argument("--domains", nargs="+", help="target domains (default: all in the dataset)")
    e.add_argument("--split", default="test", choices=["train", "valcl", "valpx", "test"])
    e.add_argument("--batch-size", type=positive_int, default=32, dest="batch_size")
    e.add_argument("--json", help="also write the report as JSON here")
    e.add_argument(
        "--precision", choices=["fp32", "bf16", "fp16"], help="autocast dtype (default: the run's own)"
    )
    e.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (CUDA when available)")
    e.set_defaults(fn=commands.cmd_evaluate)


def _add_stain_sweep(groups: Any) -> None:
    """`pixelcam stain-sweep ...`."""
    sw = groups.add_parser(
        "stain-sweep", help="PxAP and CL of a checkpoint under stain-shift levels 0..L (paper Fig. 4/5)"
    )
    sw.add_argument("--checkpoint", "--model", dest="checkpoint", required=True, help=CHECKPOINT_HELP)
    sw.add_argument("--data", required=True, help="dataset directory")
    sw.add_argument("--domain", required=True, help="domain whose test split is shifted")
    sw.add_argument("--reference", required=True, help="domain whose stain the images move toward")
    sw.add_argument(  # checked against the stain-transform registry when the command runs (fast --help)
        "--stain", default="reinhard", help="stain transform: reinhard (default), macenko or hed"
    )
    sw.add_argument("--levels", type=positive_int, default=10)
    sw.add_argument(
        "--mode",
        choices=("styles", "interpolate"),
        default="styles",
        help="styles: L distinct styles from L reference images, ordered by distance (the paper, default); "
        "interpolate: one fitted stain approached in L steps up to --max-strength",
    )
    sw.add_argument("--max-strength", type=positive_float, default=1.0, dest="max_strength")
    sw.add_argument("--fit-images", type=positive_int, default=64, dest="fit_images")
    sw.add_argument("--json", help="also write the report as JSON here")
    sw.set_defaults(fn=commands.cmd_stain_sweep)


def _add_predict(groups: Any) -> None:
    """`pixelcam predict ...`."""
    pr = groups.add_parser(
        "predict", help="apply a trained model to whole-slide images: tiled heatmaps on Ray Data"
    )
    pr.add_argument("--checkpoint", "--model", dest="checkpoint", required=True, help=CHECKPOINT_HELP)
    pr.add_argument(
        "--slides", required=True, nargs="+", help="slide files or globs (pyramidal TIFF, SVS, ...)"
    )
    pr.add_argument("--out", required=True, help="output directory (one subdirectory per slide)")
    where = pr.add_mutually_exclusive_group()
    where.add_argument(
        "--mpp", type=positive_float, help="analyse the level nearest this resolution (micrometres/pixel)"
    )
    where.add_argument("--level", type=nonnegative_int, help="analyse this pyramid level (default 0)")
    pr.add_argument("--tile", type=positive_int, default=224, help="tile size in pixels at the level")
    pr.add_argument("--overlap", type=nonnegative_int, default=32, help="overlap of neighbouring tiles")
    pr.add_argument(
        "--heatmap-stride",
        type=positive_int,
        default=16,
        dest="stride",
        help="level pixels per heatmap pixel (divides --tile and --overlap; default 16)",
    )
    pr.add_argument("--batch-size", type=positive_int, default=32, dest="batch_size")
    pr.add_argument("--actors", type=positive_int, default=1, help="model actors (default 1)")
    pr.add_argument(
        "--gpus-per-actor",
        type=nonnegative_float,
        default=0.0,
        dest="gpus_per_actor",
        help="GPUs per model actor on a cluster (fractions pack actors; default 0: CPU actors)",
    )
    pr.add_argument("--cpus-per-actor", type=positive_float, default=None, dest="cpus_per_actor")
    pr.add_argument("--precision", choices=["fp32", "bf16", "fp16"], help="default: the run's own")
    pr.add_argument(
        "--class",
        dest="cam_class",
        help="map and score this class (default: maps of each tile's predicted class, scores of the last)",
    )
    pr.add_argument(
        "--min-tissue", type=float, default=0.05, dest="min_tissue", help="tissue fraction to keep a tile"
    )
    pr.add_argument(
        "--mask",
        nargs="+",
        default=[],
        dest="masks",
        help="binary ROI masks (NAME.tif, NAME_mask.tif, ...; files or globs): slide-level PxAP",
    )
    pr.add_argument("--top-k", type=positive_int, default=8, dest="top_k", help="top-scoring tiles shown")
    pr.add_argument(
        "--heatmap-format",
        choices=["ome", "tiff"],
        default="ome",
        dest="heatmap_format",
        help="heatmap.ome.tif (OME-TIFF, default: QuPath, Bio-Formats) or heatmap.tif (plain pyramidal TIFF)",
    )
    pr.add_argument(
        "--threshold",
        type=unit_float,
        default=None,
        help="map value the contours (contours.geojson) enclose (default: the run's tau, chosen on valpx)",
    )
    pr.add_argument("--overwrite", action="store_true", help="replace a slide's existing output directory")
    pr.add_argument("--no-mlflow", action="store_true", help="do not log an MLflow run of kind inference")
    pr.set_defaults(fn=slide_commands.cmd_predict)


def _int(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _int(text, 1)


def port(text: str) -> int:
    """argparse type: a TCP port, 1-65535."""
    value = _int(text, 1)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 1-65535, got {value}")
    return value


def nonnegative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _int(text, 0)


def _float(text: str, positive: bool) -> float:
    what = "a number > 0" if positive else "a number >= 0"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not value == value or value in (float("inf"),) or value < 0 or (positive and value == 0):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    return _float(text, True)


def nonnegative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    return _float(text, False)


def unit_float(text: str) -> float:
    """argparse type: a map value in (0, 1]."""
    value = _float(text, True)
    if value > 1.0:
        raise argparse.ArgumentTypeError(f"expected a map value in (0, 1], got {value}")
    return value


def alias(text: str) -> str:
    """A registry alias as MLflow accepts it: letters, digits, `_` and `-`; not `latest` nor `v<number>`
    (MLflow's own version references)."""
    if (
        not re.fullmatch(r"[A-Za-z0-9_-]{1,255}", text)
        or text.lower() == "latest"
        or re.fullmatch(r"[vV]\d+", text)
    ):
        raise argparse.ArgumentTypeError(
            f"{text!r}: letters, digits, '_' and '-' only, not 'latest' nor v<number> (e.g. champion)"
        )
    return text


def _kept(exc: BaseException) -> str:
    return getattr(exc, "kept", "nothing half-written was kept")


def _stopped(exc: BaseException, what: str, code: int) -> int:
    """The one line of an interrupted command, and its exit code (at once when a thread was abandoned)."""
    print(f"pixelcam: {what}; {_kept(exc)}", file=sys.stderr)
    if getattr(exc, "abandoned", False):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    # Ctrl-C is KeyboardInterrupt even when the shell started us with SIGINT ignored (`cmd &` in a script)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return args.fn(args)
    except KeyboardInterrupt as exc:
        return _stopped(exc, "interrupted (Ctrl-C)", 130)
    except Terminated as exc:
        return _stopped(exc, "terminated (SIGTERM)", 143)
    except USER_ERRORS as exc:
        print(f"pixelcam: error: {exc}", file=sys.stderr)
        return 2
    except KeyError as exc:  # registry look-ups name the known choices
        print(f"pixelcam: error: {exc.args[0]}", file=sys.stderr)
        return 2
    except OSError as exc:  # a full disk, a read-only or forbidden place, a path through a file
        if exc.errno == errno.EPIPE:  # `pixelcam ... | head`: the reader left, nothing to say
            return 141
        print(f"pixelcam: error: {describe_os_error(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
