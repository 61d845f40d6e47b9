"""A mask as Label Studio polygons: one per connected part, holes cut in, outline simplified.

LS polygons have no holes, so each hole is joined to its part's outline by a zero-width cut
(the outline walks in along the cut, around the hole the other way, and back out): the
polygon then covers the part without the hole under any fill rule, as the editor draws it.
Parts and holes smaller than ``min_part`` percent of the largest part are dropped (SAM's
specks); outlines are simplified with Douglas-Peucker at ``tolerance`` percent of the
image's longer side. Vertices are pixel centres, so a polygon rasterised back over the image
covers the mask's pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["mask_polygons"]

#: ``(n, 2)`` float vertices in pixels.
Ring = npt.NDArray[np.float64]


def _signed_area(ring: Ring) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2


def _cut_in(outline: Ring, hole: Ring) -> Ring:
    """``outline`` with ``hole`` joined at their closest vertices, walked the opposite way."""
    if np.sign(_signed_area(hole)) == np.sign(_signed_area(outline)):
        hole = hole[::-1]
    distances = ((outline[:, None, :] - hole[None, :, :]) ** 2).sum(axis=2)
    i, j = np.unravel_index(int(np.argmin(distances)), distances.shape)
    around = np.concatenate([hole[j:], hole[: j + 1]])
    return np.concatenate([outline[: i + 1], around, outline[i:]])


def _simplified(contour: Any, epsilon: float) -> Ring | None:
    import cv2

    points = cv2.approxPolyDP(contour, epsilon, True) if epsilon > 0 else contour
    ring = np.asarray(points, np.float64).reshape(-1, 2) + 0.5  # pixel centres
    return ring if len(ring) >= 3 else None


def mask_polygons(
    mask: npt.NDArray[np.bool_], *, tolerance: float = 0.2, min_part: float = 1.0
) -> list[list[tuple[float, float]]]:
    """The mask's parts as polygons in pixel coordinates, largest part first.

    Args:
        mask: ``height x width`` booleans.
        tolerance: how far (percent of the longer image side) the simplified outline may
            stray from the mask's; 0 keeps every boundary pixel.
        min_part: parts and holes with less area than this percent of the largest part are
            left out.

    Returns:
        One vertex list per part, each at least 3 ``(x, y)`` pixel positions.
    """
    import cv2

    pixels = np.ascontiguousarray(mask, dtype=np.uint8)
    # RETR_CCOMP: outer outlines at the top level, the holes of each as its children.
    contours, hierarchy = cv2.findContours(pixels, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return []
    links = hierarchy[0]
    areas = [cv2.contourArea(c) + len(c) / 2 for c in contours]  # + boundary: pixels, not centres
    outer = [i for i in range(len(contours)) if links[i][3] < 0]
    smallest = max(areas[i] for i in outer) * min_part / 100
    epsilon = tolerance / 100 * max(mask.shape)
    parts: list[tuple[float, Ring]] = []
    for i in outer:
        if areas[i] < smallest:
            continue
        outline = _simplified(contours[i], epsilon)
        if outline is None:
            continue
        child = links[i][2]
        holes = []
        while child >= 0:
            hole = _simplified(contours[child], epsilon) if areas[child] >= smallest else None
            if hole is not None:
                holes.append((areas[child], hole))
            child = links[child][0]
        for _, hole in sorted(holes, key=lambda h: -h[0]):
            outline = _cut_in(outline, hole)
        parts.append((areas[i], outline))
    parts.sort(key=lambda p: -p[0])
    return [[(float(x), float(y)) for x, y in ring] for _, ring in parts]
