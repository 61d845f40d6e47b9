"""Every control of every official LS template gets results that LS's rules accept.

For each (template, control) pair, the builder for that control type makes a result (with
the region it describes, for per-region controls and split-format labels;
``results_samples.py``), and the whole result list is checked by
:func:`prelabel.validation.result_problems` against the template and a task whose text holds
emoji, a combining mark, CJK and right-to-left script. The number of pairs covered is the one
the README reports.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from results_samples import BUILDERS, PAIRS, TEMPLATES, label_of, sample_result, sample_task

from prelabel.config import LabelConfig
from prelabel.validation import result_problems

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.parametrize(("path", "name"), PAIRS, ids=[f"{p.stem}:{n}" for p, n in PAIRS])
def test_builder_output_is_what_ls_accepts(path: Path, name: str) -> None:
    config = LabelConfig.parse(path.read_text())
    control = config.control(name)
    regions = sample_result(config, control)
    # The control's own result, except a Labels on a Video, whose label rides in the
    # VideoRectangle's result.
    if control.type == "labels" and control.object().tag == "Video":
        assert regions[-1].value["labels"] == [label_of(control)]
    else:
        assert regions[-1].from_name == control.name
    result = [region.to_ls() for region in regions]
    assert result_problems(result, config, sample_task(config)) == []


def test_every_pair_is_covered_and_the_readme_says_how_many() -> None:
    # Every control of the 69 templates has a builder (the dispatch above has no fallback).
    assert len(TEMPLATES) == 69
    types = {
        (path.stem, name): LabelConfig.parse(path.read_text()).control(name).type
        for path, name in PAIRS
    }
    uncovered = [pair for pair, kind in types.items() if kind not in BUILDERS]
    assert uncovered == []
    found = re.search(r"all (\d+) \(template, control\) pairs of the 69", README.read_text())
    assert found is not None, "README must report the (template, control) pairs covered"
    assert int(found.group(1)) == len(PAIRS)
