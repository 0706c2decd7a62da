"""Storage: where pixelcam keeps what it writes. `Location` opens a local path or a URI (s3://, gs://,
hdfs://, file://) once and is handed down; `atomic` writes local files and directories whole."""

from pixelcam.storage.location import Location, is_uri

__all__ = ["Location", "is_uri"]
