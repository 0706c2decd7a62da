"""Whole-slide inference (`pixelcam predict`): a selected model over pyramidal slides on Ray Data.

reader (open, check, pick the level) -> tissue (Otsu on saturation) -> tiles (grid on tissue) -> pipeline
(Ray Data: read tasks, model actor pool) -> stitch (overlap blending, memory-mapped) -> heatmap (pyramidal
TIFF), overview (PNGs); predict orchestrates and writes the outputs; synthetic builds test slides.
"""
