"""The one exception type for bad datasets and bad input files (defined in `pixelcam.errors`)."""

from pixelcam.errors import DatasetError

__all__ = ["DatasetError"]
