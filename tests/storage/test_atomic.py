import json

import pytest

from pixelcam.storage.atomic import write_json_atomic, write_text_atomic


def test_atomic_write_replaces_and_leaves_no_temporaries(tmp_path):
    f = tmp_path / "sub" / "a.json"
    write_json_atomic(f, {"b": 1, "a": [1, 2]})
    assert json.loads(f.read_text()) == {"a": [1, 2], "b": 1}
    write_text_atomic(f, b"bytes")
    assert f.read_bytes() == b"bytes" and sorted(p.name for p in f.parent.iterdir()) == ["a.json"]


def test_failed_write_keeps_the_old_file(tmp_path):
    f = tmp_path / "a.json"
    f.write_text("old")
    with pytest.raises(TypeError):
        write_json_atomic(f, {"x": object()})  # not JSON: fails before anything is renamed
    assert f.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.json"]
