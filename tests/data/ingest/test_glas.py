from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixelcam.data import DatasetError, open_dataset
from pixelcam.data.ingest import ingest
from pixelcam.data.png import decode_image, decode_mask
from tests.data.ingest.fixtures import make_glas


def test_glas_ingest_splits_and_masks(tmp_path: Path):
    root = make_glas(tmp_path / "GlaS")
    ingest("glas", tmp_path / "out", root=str(root), seed=0)
    ds = open_dataset(tmp_path / "out", verify=True)
    assert ds.domains == ["glas"] and ds.class_names("glas") == ["benign", "malignant"]
    c = ds.counts("glas")
    assert c["valpx"] == {"benign": 3, "malignant": 3}
    assert c["test"] == {"benign": 3, "malignant": 3}  # testA (4) + testB (2)
    assert sum(c["train"].values()) + sum(c["valcl"].values()) == 6
    row = ds.read_table(splits=["test"]).to_pylist()[0]
    src = np.asarray(Image.open(root / "testA_1.bmp").convert("RGB"))
    assert np.array_equal(decode_image(row["image"]), src)  # lossless BMP -> PNG
    assert set(np.unique(decode_mask(row["mask"]))) == {0, 1}  # instance labels binarised
    ingest("glas", tmp_path / "out2", root=str(root), seed=0)
    assert open_dataset(tmp_path / "out2").hash == ds.hash  # the valpx/valcl draw is fixed by the seed


@pytest.mark.parametrize(
    "breakage, message",
    [
        (lambda r: (r / "train_3.bmp").write_bytes(b"not a bmp"), r"train_3.bmp: cannot decode image"),
        (
            lambda r: (r / "train_2_anno.bmp").unlink(),
            r"train_2_anno.bmp: mask file not found \(listed in .*Grade.csv:3\)",
        ),
        (
            lambda r: Image.fromarray(np.zeros((5, 5), np.uint8)).save(r / "testB_1_anno.bmp"),
            r"testB_1_anno.bmp: mask is 5x5 but its image .*testB_1.bmp is 24x2\d",
        ),
        (
            lambda r: (r / "Grade.csv").write_text(
                (r / "Grade.csv").read_text().replace(" malignant", " evil", 1)
            ),
            r"Grade.csv:3: unknown grade ' evil'",
        ),
        (
            lambda r: (r / "Grade.csv").write_text((r / "Grade.csv").read_text() + "train_1, 0, benign, x\n"),
            r"duplicate image 'glas-train_1'",
        ),
        (lambda r: (r / "Grade.csv").unlink(), r"Grade.csv: not found"),
    ],
)
def test_glas_bad_input_is_named_and_nothing_is_written(tmp_path: Path, breakage, message):
    root = make_glas(tmp_path / "GlaS")
    breakage(root)
    with pytest.raises(DatasetError, match=message):
        ingest("glas", tmp_path / "out", root=str(root))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["GlaS"]
