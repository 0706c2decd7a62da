"""The one exception type for bad datasets and bad input files."""


class DatasetError(ValueError):
    """Bad input data; the message names the file, row or field and what was expected."""
