"""NEGEV vs PixelCAM at test time and NEGEV's CRF loss at training time, measured side by side in one run.

(1) Map cost per image of the baseline (CAM), CAM w/ NEGEV and CAM w/ PixelCAM on ResNet-50, as ratios of the
baseline's forward pass (the paper's Table 11 reports 10.3-12.3 ms for NEGEV vs 8.4-9.2 ms for PixelCAM on an
RTX A6000), with their parameter counts. NEGEV's map is a U-Net decoder over the encoder's pyramid; PixelCAM's
a 1x1 convolution on the last feature map. (2) The dense CRF loss (exact: every pixel pair, in row blocks) per
224 x 224 image, forward and backward, at input scales 1, 0.5 and 0.25 (`crf_scale`), as a ratio of the
backbone's forward + backward on the same image. Run: `.venv/bin/python benchmarks/negev_cost.py [--batch 8]`.
"""

from __future__ import annotations

import argparse

import torch
from support.timing import timed

from pixelcam.models import create_wsol_model
from pixelcam.models.negev_losses import crf_loss


def map_costs(batch: int, size: int, reps: int, device: torch.device) -> None:
    x = torch.randn(batch, 3, size, size, device=device)
    y = torch.randint(0, 2, (batch,), device=device)
    models = {
        "cam": create_wsol_model("cam", "resnet50"),
        "cam w/ NEGEV": create_wsol_model("negev", "resnet50", baseline_method="cam"),
        "cam w/ PixelCAM": create_wsol_model("pixelcam", "resnet50", baseline_method="cam"),
    }
    base = models["cam"].to(device).eval()

    def forward() -> None:
        with torch.no_grad():
            base(x)

    fwd = timed(forward, reps, device) / batch * 1e3
    print(f"(1) map per image, batch {batch} x {size} px; ratio to the baseline's forward ({fwd:.2f} ms)")
    print(f"  {'model':<16} {'params':>12} {'map ms':>9} {'map / fwd':>10}")
    for name, model in models.items():
        model = model.to(device).eval()
        params = sum(p.numel() for p in model.parameters())
        ms = timed(lambda model=model: model.cam(x, y), reps, device) / batch * 1e3
        print(f"  {name:<16} {params:>12,} {ms:>9.2f} {ms / fwd:>9.2f}x")


def crf_costs(size: int, reps: int, device: torch.device) -> None:
    torch.manual_seed(0)
    model = create_wsol_model("cam", "resnet50").to(device).train()
    x = torch.randn(1, 3, size, size, device=device)

    def step() -> None:
        model.zero_grad()
        model(x)["logits"].sum().backward()

    step_ms = timed(step, reps, device) * 1e3
    print(
        f"\n(2) CRF loss per {size} x {size} image, forward + backward; "
        f"ratio to the backbone's ({step_ms:.1f} ms)"
    )
    print(f"  {'scale':>6} {'pixels':>8} {'CRF ms':>10} {'CRF / step':>11}")
    images = torch.rand(1, 3, size, size, device=device) * 255
    for scale in (1.0, 0.5, 0.25):
        logits = torch.randn(1, 2, size, size, device=device, requires_grad=True)

        def crf(scale: float = scale, logits: torch.Tensor = logits) -> None:
            crf_loss(torch.softmax(logits, 1), images, scale=scale).backward()

        ms = timed(crf, 1 if scale == 1.0 else reps, device) * 1e3
        side = round(size * scale)
        print(f"  {scale:>6} {side * side:>8,} {ms:>10.1f} {ms / step_ms:>10.1f}x")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = (
        torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    )
    print(f"device: {name}")
    map_costs(args.batch, args.size, args.reps, device)
    crf_costs(args.size, args.reps, device)


if __name__ == "__main__":
    main()
