"""``VideoRectangle``: objects tracked through a video, as LS keyframe sequences.

A ``<VideoRectangle>`` has no labels of its own: its labels are those of the ``<Labels>``
control on the same ``<Video>`` (as in LS's video tracking template). Each track of
ultralytics' ByteTrack or BoT-SORT becomes one region whose ``sequence`` holds a keyframe
for every processed frame the track was seen on; LS interpolates between keyframes, so a
frame stride > 1 still gives a box on every frame.

LS numbers frames from 1 at the ``<Video framerate>`` it is told (24 when unset), which may
not be the file's own rate; source frames are mapped through time onto LS's frame grid.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prelabel import MediaError, UnsupportedConfig
from prelabel.config import Control, LabelConfig, LabelMap
from prelabel.results import Keyframe, video_rectangle
from prelabel_yolo.controls import Outcome, PredictStats, box_distribution
from prelabel_yolo.models import LoadedModel

if TYPE_CHECKING:
    from prelabel.media import MediaResolver

__all__ = [
    "LS_DEFAULT_FRAMERATE",
    "TRACKERS",
    "Observation",
    "VideoInfo",
    "VideoPlan",
    "labels_control",
    "probe",
    "track",
    "track_task",
    "tracker_options",
    "tracks_to_outcome",
]

log = logging.getLogger(__name__)

#: The frame rate LS assumes for a ``<Video>`` without a ``framerate`` attribute.
LS_DEFAULT_FRAMERATE = 24.0
#: Trackers a control may name with ``model_tracker``.
TRACKERS = ("bytetrack", "botsort")


@dataclass(frozen=True)
class VideoInfo:
    """What OpenCV reports for a video file: frame count, frame rate and frame size."""

    frames: int
    fps: float
    width: int
    height: int

    @property
    def duration(self) -> float:
        return self.frames / self.fps


def probe(path: Path) -> VideoInfo | None:
    """The video's frame count, rate and size, or ``None`` if OpenCV cannot read it."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            return None
        info = VideoInfo(
            frames=int(capture.get(cv2.CAP_PROP_FRAME_COUNT)),
            fps=float(capture.get(cv2.CAP_PROP_FPS)),
            width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
    finally:
        capture.release()
    ok = info.frames > 0 and info.fps > 0 and info.width > 0 and info.height > 0
    return info if ok and math.isfinite(info.fps) else None


@dataclass(frozen=True)
class Observation:
    """A tracked box on one source frame: 0-based frame index, track id, class, confidence, xyxy px."""

    index: int
    track: int
    cls: int
    conf: float
    xyxy: tuple[float, float, float, float]


@dataclass
class VideoPlan:
    """How one ``VideoRectangle`` control is filled.

    Attributes:
        control: the ``VideoRectangle`` control.
        labels: the ``Labels`` control whose labels its regions carry.
        model: the detector.
        label_map: model class → label of ``labels``.
        conf: ``model_score_threshold``: a detection at or above it may start or extend a track.
        iou: NMS IoU threshold.
        floor: lowest track confidence that counts toward uncertainty.
        tracker: the tracker's settings (ultralytics' tracker yaml keys).
        stride: process every ``stride``-th frame.
        max_frames: most frames processed per video (the stride grows to fit); 0: no limit.
        framerate: LS's frame rate for the video (``<Video framerate>``, else 24).
    """

    control: Control
    labels: Control
    model: LoadedModel
    label_map: LabelMap
    conf: float
    iou: float
    floor: float
    tracker: dict[str, Any] = field(default_factory=dict)
    stride: int = 1
    max_frames: int = 0
    framerate: float = LS_DEFAULT_FRAMERATE

    @property
    def object_name(self) -> str:
        return self.control.objects[0].name

    def stride_for(self, frames: int) -> int:
        """The stride for a video of ``frames`` frames: the configured one, raised to fit ``max_frames``."""
        if self.max_frames and frames > self.max_frames * self.stride:
            return math.ceil(frames / self.max_frames)
        return self.stride


def labels_control(config: LabelConfig, control: Control) -> Control:
    """The ``Labels`` control on the same ``Video`` as a ``VideoRectangle``.

    Raises:
        UnsupportedConfig: there is none.
    """
    video = control.objects[0].name
    for candidate in config.controls_of("Labels"):
        if video in candidate.to_name:
            return candidate
    raise UnsupportedConfig(
        f"VideoRectangle {control.name!r} takes its labels from a <Labels toName={video!r}> "
        "control, and this config has none; add one with the labels to predict."
    )


def tracker_options(control: Control, conf: float, default: str) -> dict[str, Any]:
    """The tracker settings for ``control``: ``model_tracker``'s yaml, thresholds, overrides.

    ``model_score_threshold`` below the tracker's own thresholds lowers them, so a box the
    threshold admits can start a track. ``model_tracker_<key>="value"`` overrides any key of
    the tracker's yaml (``model_tracker_track_buffer="60"``).

    Raises:
        UnsupportedConfig: an unknown tracker, key or value.
    """
    from ultralytics.utils import ROOT, YAML

    name = control.attrs.get("model_tracker", default).strip().lower()
    if name not in TRACKERS:
        raise UnsupportedConfig(
            f"Control {control.name!r}: model_tracker={name!r}; choose {' or '.join(TRACKERS)}."
        )
    path = ROOT / "cfg" / "trackers" / f"{name}.yaml"
    options: dict[str, Any] = dict(YAML.load(path))  # type: ignore[no-untyped-call]
    for key in ("track_high_thresh", "new_track_thresh", "track_low_thresh"):
        options[key] = min(float(options[key]), conf)
    prefix = "model_tracker_"
    for attr, raw in control.attrs.items():
        if not attr.startswith(prefix):
            continue
        key = attr[len(prefix) :]
        if key not in options or key == "tracker_type":
            known = ", ".join(k for k in options if k != "tracker_type")
            raise UnsupportedConfig(
                f"Control {control.name!r}: {attr} is not a {name} setting (known: {known})."
            )
        options[key] = _typed(control, attr, raw, options[key])
    return options


def _typed(control: Control, attr: str, raw: str, like: Any) -> Any:
    try:
        if isinstance(like, bool):
            if raw.lower() not in ("true", "false"):
                raise ValueError(raw)
            return raw.lower() == "true"
        if isinstance(like, int):
            return int(raw)
        if isinstance(like, float):
            return float(raw)
    except ValueError:
        raise UnsupportedConfig(
            f"Control {control.name!r}: {attr}={raw!r} must be of type {type(like).__name__}."
        ) from None
    return raw


def track(
    plan: VideoPlan, path: Path, info: VideoInfo, options: Mapping[str, Any]
) -> tuple[list[Observation], int, bool]:
    """Run ultralytics' tracker over the video.

    Args:
        plan: the control's plan.
        path: the local video file.
        info: what :func:`probe` found.
        options: extra ultralytics predict arguments (``imgsz``, ``batch``, ``device``).

    Returns:
        The observations, the last processed source frame index, and whether the whole
        video was processed.
    """
    from ultralytics.data.utils import VID_FORMATS

    stride = plan.stride_for(info.frames)
    limit = math.ceil(info.frames / stride)
    observations: list[Observation] = []
    last, processed = -1, 0
    with tempfile.TemporaryDirectory(prefix="prelabel-yolo-track-") as tmp:
        config = Path(tmp) / "tracker.yaml"
        config.write_text(json.dumps(plan.tracker))  # JSON is YAML
        source = path
        if path.suffix.lower().lstrip(".") not in VID_FORMATS:
            # OpenCV reads the container from its content; ultralytics needs a video suffix.
            source = Path(tmp) / "video.mp4"
            source.symlink_to(path.resolve())
        with plan.model.lock:
            stream = plan.model.yolo.track(
                source=str(source),
                stream=True,
                persist=False,  # fresh tracks for every video
                tracker=str(config),
                # Low-score boxes only extend existing tracks (ByteTrack's second stage).
                conf=min(plan.conf, float(plan.tracker["track_low_thresh"])),
                iou=plan.iou,
                vid_stride=stride,
                verbose=False,
                **options,
            )
            try:
                for result in stream:
                    # Ultralytics grabs `stride` frames and decodes the last one.
                    last = (processed + 1) * stride - 1
                    processed += 1
                    observations.extend(_observations(result, last))
                    if processed >= limit:
                        break
            finally:
                stream.close()  # releases the capture and the predictor's lock
    return observations, last, last + stride >= info.frames


def _observations(result: Any, index: int) -> list[Observation]:
    boxes = result.boxes
    if boxes is None or not boxes.is_track:
        return []
    rows = zip(
        boxes.id.int().tolist(),
        boxes.cls.int().tolist(),
        boxes.conf.tolist(),
        boxes.xyxy.tolist(),
        strict=True,
    )
    return [Observation(index, t, c, p, (x1, y1, x2, y2)) for t, c, p, (x1, y1, x2, y2) in rows]


def tracks_to_outcome(
    plan: VideoPlan,
    observations: Sequence[Observation],
    info: VideoInfo,
    *,
    last_index: int,
    complete: bool,
    stats: PredictStats,
) -> Outcome:
    """One region per track; the distribution is the least decided track's ``[p, 1 - p]``.

    A track's label is the mapped class with the most confidence summed over its frames, its
    score the mean confidence. A keyframe before a gap of unprocessed-or-missed frames, and
    the last one of a track that ends before the video does, get ``enabled: false``.

    Args:
        plan: the control's plan.
        observations: tracked boxes, in frame order.
        info: the video's size and rate.
        last_index: the last processed source frame (0-based).
        complete: whether processing reached the end of the video.
        stats: counters for unmapped classes.
    """
    stride = plan.stride_for(info.frames)
    frames_count = max(1, round(info.duration * plan.framerate))
    by_track: dict[int, list[Observation]] = defaultdict(list)
    for observation in observations:
        by_track[observation.track].append(observation)
    names = plan.model.names
    outcome = Outcome()
    scores: list[float] = []
    for seen in by_track.values():
        votes: dict[int, float] = defaultdict(float)
        for o in seen:
            votes[o.cls] += o.conf
        cls = max(votes, key=votes.__getitem__)
        label = plan.label_map.get(names[cls])
        if label is None:
            stats.drop(names[cls])
            continue
        score = sum(o.conf for o in seen) / len(seen)
        scores.append(score)
        keyframes = _keyframes(seen, info, plan.framerate, stride, frames_count)
        if keyframes and not (complete and seen[-1].index == last_index):
            keyframes[-1] = _disabled(keyframes[-1])
        if keyframes:
            outcome.regions.append(
                video_rectangle(
                    plan.control,
                    plan.labels,
                    keyframes,
                    label=label,
                    frames_count=frames_count,
                    duration=info.duration,
                    framerate=plan.framerate,
                    score=min(1.0, score),
                )
            )
    outcome.distribution = box_distribution([p for p in scores if p >= plan.floor])
    return outcome


def _disabled(key: Keyframe) -> Keyframe:
    return Keyframe(key.frame, key.x, key.y, key.width, key.height, enabled=False)


def _keyframes(
    seen: Sequence[Observation], info: VideoInfo, framerate: float, stride: int, frames_count: int
) -> list[Keyframe]:
    keyframes: list[Keyframe] = []
    previous: Observation | None = None
    for o in seen:
        if previous is not None and keyframes and o.index - previous.index > stride:
            keyframes[-1] = _disabled(keyframes[-1])  # lost in between: no box in the gap
        previous = o
        frame = min(round(o.index / info.fps * framerate) + 1, frames_count)
        if keyframes and frame <= keyframes[-1].frame:
            continue  # two source frames on one LS frame (the file's rate is higher than LS's)
        x1, y1, x2, y2 = (
            min(max(o.xyxy[0], 0.0), info.width),
            min(max(o.xyxy[1], 0.0), info.height),
            min(max(o.xyxy[2], 0.0), info.width),
            min(max(o.xyxy[3], 0.0), info.height),
        )
        if x2 <= x1 or y2 <= y1:
            continue
        keyframes.append(
            Keyframe(
                frame=frame,
                x=x1 / info.width * 100,
                y=y1 / info.height * 100,
                width=(x2 - x1) / info.width * 100,
                height=(y2 - y1) / info.height * 100,
            )
        )
    return keyframes


def track_task(
    plan: VideoPlan,
    task: Mapping[str, Any],
    media: MediaResolver,
    options: Mapping[str, Any],
    stats: PredictStats,
) -> Outcome | None:
    """Track ``plan``'s video of one task; ``None`` (and a warning) if it cannot be read."""
    key = plan.control.objects[0].value_key or ""
    url = (task.get("data") or {}).get(key)
    info: VideoInfo | None = None
    try:
        if isinstance(url, str) and url:
            path = media.local_path(url, task_id=task.get("id"))
            info = probe(path)
        if info is None:
            raise OSError("no video in the task data, or OpenCV cannot decode it")
        observations, last, complete = track(plan, path, info, options)
    except (MediaError, OSError) as exc:  # FileNotFoundError when ultralytics cannot open it
        log.warning("yolo: task %s: cannot read video %.200s: %s", task.get("id"), url, exc)
        stats.add(unreadable_videos=1)
        return None
    if not complete:
        log.info(
            "yolo: task %s: processed %d of %d frames (model_max_frames)",
            task.get("id"),
            last + 1,
            info.frames,
        )
    return tracks_to_outcome(
        plan, observations, info, last_index=last, complete=complete, stats=stats
    )
