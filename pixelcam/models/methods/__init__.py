"""Baseline WSOL methods and PixelCAM, one small module each."""
