"""Slide contours against geometry computed by hand: exact cell outlines with their holes, level-0
coordinates, QuPath's annotation properties, per-region mean/max, simplification within one cell."""

import json

import numpy as np
import pytest
import shapely

from pixelcam.evaluation.slides.contours import (
    AREA,
    ContourStyle,
    contours_geojson,
    region_geometry,
    row_runs,
)


def test_row_runs_are_the_runs_of_each_row():
    region = np.array([[1, 1, 0, 1], [0, 0, 0, 0], [0, 1, 1, 1]], bool)
    assert row_runs(region).tolist() == [[0, 0, 2], [0, 3, 4], [2, 1, 4]]


def test_a_ring_is_one_polygon_with_its_hole_at_level0_coordinates():
    heat = np.zeros((8, 12), np.uint8)
    heat[2:5, 5:8] = 200  # a 3 x 3 block of cells ...
    heat[3, 6] = 0  # ... with a hole in the middle
    fc = contours_geojson(heat, 0.5, level0_per_pixel=16.0)
    (feature,) = fc["features"]
    geom = shapely.geometry.shape(feature["geometry"])
    assert geom.geom_type == "Polygon" and len(geom.interiors) == 1
    assert geom.bounds == (5 * 16, 2 * 16, 8 * 16, 5 * 16)  # cells (2..4, 5..7) span x 80-128, y 32-80
    assert geom.area == pytest.approx(8 * 16**2)  # 9 cells less the hole, 16 x 16 level-0 pixels each
    assert shapely.geometry.Polygon(geom.interiors[0]).bounds == (96, 48, 112, 64)


def test_features_carry_qupaths_annotation_properties_and_their_cells_values():
    heat = np.zeros((10, 10), np.uint8)
    heat[0:2, 0:2] = [[255, 204], [153, 153]]  # 4 cells: mean (1 + .8 + .6 + .6) / 4 = .75, max 1
    heat[6:9, 6:9] = 102  # 9 cells of 0.4, the larger region: listed first
    fc = json.loads(json.dumps(contours_geojson(heat, 0.4, 2.0, ContourStyle("Tumor", (200, 0, 0)))))
    big, small = fc["features"]
    for f in (big, small):
        props = f["properties"]
        assert props["objectType"] == "annotation" and props["classification"] == {
            "name": "Tumor",
            "color": [200, 0, 0],
        }
    assert big["properties"]["cells"] == 9 and small["properties"]["cells"] == 4
    assert big["properties"]["measurements"][AREA] == pytest.approx(9 * 4.0)
    assert small["properties"]["measurements"]["Mean probability"] == pytest.approx(0.75)
    assert small["properties"]["measurements"]["Max probability"] == pytest.approx(1.0)
    assert fc["properties"]["regions"] == 2 and fc["properties"]["threshold"] == 0.4


def test_the_threshold_is_inclusive_and_a_map_value():
    heat = np.full((4, 4), 128, np.uint8)  # 128 / 255 = 0.502
    assert len(contours_geojson(heat, 128 / 255, 1.0)["features"]) == 1
    assert contours_geojson(heat, 129 / 255, 1.0)["features"] == []
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="expected a map value in"):
            contours_geojson(heat, bad, 1.0)


@pytest.mark.parametrize("seed", range(3))
def test_random_regions_are_their_cells_exactly_and_within_one_cell_once_simplified(seed: int):
    rng = np.random.default_rng(seed)
    region = rng.random((40, 50)) < 0.55
    scale = 8.0
    exact = region_geometry(region, (3, 4), scale, simplify=False)
    rows, cols = np.mgrid[0:40, 0:50]
    centres = shapely.contains_xy(exact, (cols + 4 + 0.5) * scale, (rows + 3 + 0.5) * scale)
    assert (centres == region).all()  # every cell centre inside iff the cell is in the region
    assert exact.area == pytest.approx(region.sum() * scale**2)
    simple = region_geometry(region, (3, 4), scale)
    # both ways: every point of either outline within one cell of the other (densified, not vertices only)
    assert simple.is_valid and shapely.hausdorff_distance(simple, exact, densify=0.05) <= scale
    polygons, exact_polygons = shapely.get_parts(simple), shapely.get_parts(exact)
    assert len(polygons) == len(exact_polygons)  # no region lost, and no hole
    assert (
        shapely.get_num_interior_rings(polygons).sum() == shapely.get_num_interior_rings(exact_polygons).sum()
    )


def test_simplifying_never_drops_a_hole(monkeypatch):
    import shapely

    from pixelcam.evaluation.slides import contours

    region = np.ones((9, 9), bool)
    region[2, 2] = region[6, 6] = False  # two one-cell lumens
    exact = region_geometry(region, (0, 0), 1.0, simplify=False)
    # at a 3-cell tolerance plain Douglas-Peucker drops both holes (checked here, so the test shows the
    # fallback at work); the contours keep them
    assert len(exact.simplify(3.0, preserve_topology=False).interiors) == 0
    monkeypatch.setattr(contours, "SIMPLIFY", 3.0)
    simple = region_geometry(region, (0, 0), 1.0)
    assert simple.is_valid and len(simple.interiors) == 2
    # each lumen still there: a hole ring within one cell of its centre (simplified: the square's corners)
    rings = [shapely.LinearRing(ring) for ring in simple.interiors]
    nearest = sorted(int(np.argmin([r.distance(shapely.Point(c, c)) for r in rings])) for c in (2.5, 6.5))
    assert nearest == [0, 1] and all(
        min(r.distance(shapely.Point(c, c)) for r in rings) < 1 for c in (2.5, 6.5)
    )
