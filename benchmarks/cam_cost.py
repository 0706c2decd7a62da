"""CAM cost per method (the paper's Table 11 analogue): parameters and map time per image vs a forward pass.

Batch 32 at 224 px (299 for InceptionV3 is not included: ResNet-50 and DeiT-Tiny, as in the issue), eval
mode, on CUDA when available else CPU. Ratios are to a plain forward pass of the same model, measured in the
same run. Run: `.venv/bin/python benchmarks/cam_cost.py [--batch 32] [--size 224] [--reps 3]`.
"""

from __future__ import annotations

import argparse

import torch
from support.timing import timed

from pixelcam.models import create_wsol_model, list_methods
from pixelcam.models.backbones import VIT_BACKBONES

BACKBONES = ("resnet50", "deit_tiny_patch16_224")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cpu = f"CPU, {torch.get_num_threads()} threads"
    name = torch.cuda.get_device_name() if device.type == "cuda" else cpu
    print(f"device: {name}; batch {args.batch} x {args.size} px; time per image in ms")
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    y = torch.randint(0, 2, (args.batch,), device=device)
    for backbone in BACKBONES:
        print(f"\n{backbone}")
        print(f"  {'method':<10} {'params':>12} {'forward ms':>11} {'CAM ms':>9} {'CAM / fwd':>10}")
        for method in list_methods():
            if backbone in VIT_BACKBONES and method in ("negev", "unet"):
                continue  # a U-Net decoder needs a CNN's feature pyramid
            torch.manual_seed(0)
            model = create_wsol_model(method, backbone, num_classes=2).to(device).eval()
            params = sum(p.numel() for p in model.parameters())

            def forward(model=model):
                with torch.no_grad():
                    model(x)

            fwd = timed(forward, args.reps, device) / args.batch * 1e3
            cam = timed(lambda model=model: model.cam(x, y), args.reps, device) / args.batch * 1e3
            print(f"  {method:<10} {params:>12,} {fwd:>11.2f} {cam:>9.2f} {cam / fwd:>9.2f}x")


if __name__ == "__main__":
    main()
