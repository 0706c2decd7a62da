"""pixelcam: weakly-supervised object localization (WSOL) for histology, built around PixelCAM."""

__version__ = "0.1.0"
