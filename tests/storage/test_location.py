"""`Location` on a real S3 protocol server on loopback (moto's server mode, the `s3` fixture): a file read
whole or copied to a local directory costs a request per 4 MiB, not one per 256 KiB (pyarrow's input
streams), counted in the server's request log: a checkpoint read by every evaluation of a study on a bucket
was 84 round trips."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from pixelcam.storage import Location
from tests.shared import shared_root

SIZE = 9 << 20  # 9 MiB: 3 reads of 4 MiB for a streamed copy, 36 for a 256 KiB stream


def _requests(log: Path, key: str) -> dict[str, int]:
    """GET and HEAD requests for `key` in moto's log so far (one line per finished request)."""
    lines = [line for line in log.read_text().splitlines() if f" /lab/{key} " in line]
    return {verb: sum(f'"{verb} ' in line for line in lines) for verb in ("GET", "HEAD")}


def _settled(log: Path, key: str, before: dict[str, int]) -> dict[str, int]:
    """Requests for `key` since `before`, once the log stops growing (the server logs after answering)."""
    deadline, last = time.monotonic() + 10, None
    while time.monotonic() < deadline:
        now = _requests(log, key)
        if now == last:
            break
        last = now
        time.sleep(0.2)
    return {verb: last[verb] - before[verb] for verb in last}


@pytest.fixture
def moto_log(s3, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_root(tmp_path_factory) / "s3-server" / "moto.log"


def test_a_file_is_read_in_one_get_and_copied_in_4_mib_gets(moto_log: Path, tmp_path: Path):
    key = f"location/{os.getpid()}/blob.bin"
    data = os.urandom(SIZE)
    f = Location(f"s3://lab/{key}")
    f.write_bytes(data)
    before = _requests(moto_log, key)
    assert f.read_bytes() == data
    assert _settled(moto_log, key, before) == {"GET": 1, "HEAD": 1}

    before = _requests(moto_log, key)
    out = f.parent.get_dir(tmp_path / "copy")
    assert (out / "blob.bin").read_bytes() == data
    assert _settled(moto_log, key, before)["GET"] == 3  # ceil(9 MiB / 4 MiB)
