"""Why one seed gives other numbers on another CPU: the same training run under the CPU kernels oneDNN picks
by default and with its instruction set capped, side by side on one machine.

One CAM run in the quickstart's regime (pretrained EfficientNet-Lite0, 144/128 px, 3 epochs, seed 0) on
synth-colon, trained and evaluated in a fresh process per setting: the default twice (same machine, same seed:
identical to the last digit), then with each knob that selects CPU code paths (`ONEDNN_MAX_CPU_ISA=AVX2`,
`ATEN_CPU_CAPABILITY=avx2`, `MKL_CBWR=AVX2`). A knob that changes the numbers is one through which two CPUs
(an Intel Xeon whose oneDNN dispatches to AMX-era kernels, an AMD EPYC to AVX-512 ones) give different
rounding in the convolutions, which SGD then amplifies over epochs. Prints each setting's per-epoch loss (17
digits), test PxAP and CL.

Run: `.venv/bin/python benchmarks/numerics_isa.py`
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {
    "default": {},
    "default, again": {},
    "ONEDNN_MAX_CPU_ISA=AVX2": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
    "ATEN_CPU_CAPABILITY=avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "MKL_CBWR=AVX2": {"MKL_CBWR": "AVX2"},
}


def one_run(data: str, storage: str) -> dict:
    """Train and evaluate once in this process (the environment was set before torch was imported)."""
    from pixelcam.config import load_config
    from pixelcam.evaluation.evaluate import evaluate
    from pixelcam.train.runner import train

    cfg = load_config(ROOT / "studies" / "train" / "baseline-cam.yaml", data=data, storage=storage)
    sel = train(cfg, mlflow=False)
    res = evaluate(sel.checkpoint.uri, data, ["synth-colon"]).results["synth-colon"]
    return {"loss": [h["loss"] for h in sel.history], "pxap": res.pxap, "cl": res.cl, "epoch": sel.epoch}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", nargs=2, metavar=("DATA", "STORAGE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(one_run(*args.child)))
        return
    from pixelcam.data.synth import SynthConfig, generate_synthetic
    from pixelcam.environment import describe, fingerprint

    print(f"machine: {describe(fingerprint())}")
    with tempfile.TemporaryDirectory() as tmp:
        data = str(Path(tmp) / "data")
        generate_synthetic(data, SynthConfig(domains=["synth-colon"]))
        for i, (name, env) in enumerate(SETTINGS.items()):
            start = time.perf_counter()
            out = subprocess.run(
                [sys.executable, __file__, "--child", data, str(Path(tmp) / f"runs{i}")],
                env={**os.environ, **env},
                capture_output=True,
                text=True,
                check=True,
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            loss = "  ".join(repr(v) for v in r["loss"])
            print(
                f"{name:26} loss per epoch {loss}  test PxAP {r['pxap']:.4f}  CL {r['cl']:.2f}  "
                f"(selected epoch {r['epoch']}, {time.perf_counter() - start:.0f} s)",
                flush=True,
            )


if __name__ == "__main__":
    main()
