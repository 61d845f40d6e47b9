"""Masks to Label Studio polygons: parts, holes, specks, simplification, inside the image."""

from __future__ import annotations

import cv2
import numpy as np

from prelabel_sam.masks import mask_polygons

H, W = 120, 160


def disc(cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[:H, :W]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r**2


def rasterised(polygons: list[list[tuple[float, float]]]) -> np.ndarray:
    """The polygons filled as a renderer does (non-zero winding), vertices at pixel centres."""
    canvas = np.zeros((H, W), np.uint8)
    for polygon in polygons:
        points = np.round(np.asarray(polygon) - 0.5).astype(np.int32)
        cv2.fillPoly(canvas, [points], 1)
    return canvas.astype(bool)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_a_ring_is_one_polygon_whose_hole_stays_empty():
    ring = disc(60, 60, 40) & ~disc(60, 60, 18)
    (polygon,) = mask_polygons(ring)
    filled = rasterised([polygon])
    assert not filled[60, 60]  # the hole's centre
    assert filled[60, 25] and filled[60, 95]  # the ring itself
    assert iou(filled, ring) > 0.9


def test_several_parts_are_several_polygons_largest_first():
    mask = disc(40, 40, 25) | disc(125, 80, 15)
    big, small = mask_polygons(mask)
    assert iou(rasterised([big]), disc(40, 40, 25)) > 0.9
    assert iou(rasterised([small]), disc(125, 80, 15)) > 0.9


def test_specks_and_pinholes_are_dropped():
    mask = disc(60, 60, 40)
    mask[2:4, 150:152] = True  # a 4-pixel speck far away
    mask[60, 60] = False  # a one-pixel hole
    (polygon,) = mask_polygons(mask, min_part=1.0)
    assert rasterised([polygon])[60, 60]
    assert len(mask_polygons(mask, min_part=0.0)) == 2  # kept when asked to


def test_polygons_are_inside_the_image_even_for_a_full_mask():
    for mask in (np.ones((H, W), bool), disc(0, 0, 50), disc(W, H, 70)):
        for polygon in mask_polygons(mask):
            xs, ys = zip(*polygon, strict=True)
            assert min(xs) >= 0 and max(xs) <= W and min(ys) >= 0 and max(ys) <= H
            assert len(polygon) >= 3


def test_an_empty_mask_has_no_polygon():
    assert mask_polygons(np.zeros((H, W), bool)) == []


def test_tolerance_trades_vertices_for_fidelity():
    mask = disc(80, 60, 45)
    exact, coarse = mask_polygons(mask, tolerance=0.0), mask_polygons(mask, tolerance=2.0)
    assert len(coarse[0]) < len(exact[0]) / 4
    assert iou(rasterised(exact), mask) > 0.97
    assert iou(rasterised(coarse), mask) > 0.9
