"""Building and validating results: ``prelabel.results`` builders vs ``prelabel.validation``.

A backend builds its regions once per task; ``result_problems`` checks a whole result list
(the conformance kit, tests, a backend's own checks). Both must stay linear in the number of
regions: a detector can return thousands. Measured on OCR-style predictions (a box and its
per-region transcription, sharing an id) of growing size, alternating build and validation
round by round; figures are ratios within this run (the machine is shared and noisy).
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

from prelabel import results as R
from prelabel.config import LabelConfig
from prelabel.validation import result_problems

CONFIG = LabelConfig.parse(
    '<View><Image name="image" value="$image"/>'
    '<RectangleLabels name="box" toName="image"><Label value="Text"/></RectangleLabels>'
    '<TextArea name="text" toName="image" perRegion="true"/></View>'
)
SIZES = (250, 1000, 4000)  # boxes; each gives two result items
ROUNDS = 5
OUT = Path(__file__).with_name("results") / "results.json"


def build(boxes: int) -> list[dict[str, Any]]:
    box_control, text_control = CONFIG.control("box"), CONFIG.control("text")
    result = []
    for i in range(boxes):
        box = R.rectangle_from_xyxy(
            box_control, (i % 600, i % 400, i % 600 + 30, i % 400 + 12), image_size=(640, 480),
            label="Text", score=0.9,
        )  # fmt: skip
        result += [box.to_ls(), R.textarea(text_control, [f"line {i}"], region=box).to_ls()]
    return result


def main() -> None:
    figures: dict[str, Any] = {}
    for boxes in SIZES:
        build_times, check_times = [], []
        for _ in range(ROUNDS):
            started = time.perf_counter()
            result = build(boxes)
            build_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            problems = result_problems(result, CONFIG)
            check_times.append(time.perf_counter() - started)
            assert problems == [], problems[:3]
        items = 2 * boxes
        build_s, check_s = statistics.median(build_times), statistics.median(check_times)
        figures[str(items)] = {
            "build_us_per_item": build_s / items * 1e6,
            "validate_us_per_item": check_s / items * 1e6,
            "validate_vs_build": check_s / build_s,
        }
        print(
            f"{items:5d} items: build {build_s / items * 1e6:6.1f} µs/item, validate "
            f"{check_s / items * 1e6:6.1f} µs/item ({check_s / build_s:.2f}x building)"
        )
    small, large = figures[str(2 * SIZES[0])], figures[str(2 * SIZES[-1])]
    figures["validate_per_item_growth"] = (
        large["validate_us_per_item"] / small["validate_us_per_item"]
    )
    print(
        f"validation per item, {2 * SIZES[-1]} vs {2 * SIZES[0]} items: "
        f"{figures['validate_per_item_growth']:.2f}x (1 = linear)"
    )
    OUT.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
