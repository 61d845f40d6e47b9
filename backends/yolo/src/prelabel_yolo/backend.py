"""Ultralytics YOLO for Label Studio: boxes (incl. oriented), polygons, masks, keypoints,
classes, and objects tracked through videos.

Every supported control on an ``Image`` (and ``VideoRectangle`` on a ``Video``) is filled by
its own model: the control's ``model_path`` attribute, else the setting for its kind
(``detect_model``…). Model classes
map to labels through core's :class:`~prelabel.config.LabelMap` (``predicted_values``, exact,
case-insensitive); classes without a label are dropped and counted in :attr:`YoloBackend.stats`.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from prelabel import (
    Backend,
    BackendLoadError,
    BackendSettings,
    BulkHints,
    Context,
    Evaluation,
    Prediction,
    TaskPredictions,
    TrainJob,
    TrainResult,
    UnsupportedConfig,
)
from prelabel.annotations import judged_result, unannotated
from prelabel.config import Control, LabelConfig, LabelCoverage, LabelMap, ObjectTag
from prelabel.threads import use_torch_threads
from prelabel.vision.images import batches
from prelabel_yolo import telemetry
from prelabel_yolo.controls import (
    TASKS_FOR,
    ControlPlan,
    Outcome,
    PredictStats,
    convert,
    image_controls,
    keypoint_labels,
    video_controls,
)
from prelabel_yolo.evaluation import EVAL_CONF, RANKED, Scored, score
from prelabel_yolo.models import LoadedModel, ModelCache
from prelabel_yolo.runtimes import serve_on_threads
from prelabel_yolo.settings import YoloSettings
from prelabel_yolo.video import (
    LS_DEFAULT_FRAMERATE,
    VideoPlan,
    labels_control,
    track_task,
    tracker_options,
)
from prelabel_yolo.warmup import keep_threads, warm_up

if TYPE_CHECKING:
    from prelabel.testing import Scenario

__all__ = ["YoloBackend"]

log = logging.getLogger(__name__)

#: The setting that names the default model of each control type.
DEFAULT_MODEL = {
    "rectanglelabels": "detect_model",
    "polygonlabels": "segment_model",
    "brushlabels": "segment_model",
    "keypointlabels": "pose_model",
    "choices": "classify_model",
    "videorectangle": "detect_model",
}


def tuned_weights(model_dir: Path | None, control: Control) -> Path | None:
    """Fine-tuned weights ``fit`` wrote for ``control`` in a version dir, if any."""
    if model_dir is None:
        return None
    path = model_dir / f"{control.name}.pt"
    return path if path.is_file() else None


@dataclass
class Plans:
    """How a config's controls are filled: image controls and video controls, and the
    controls left out because no model class maps to their labels."""

    images: list[ControlPlan] = field(default_factory=list)
    videos: list[VideoPlan] = field(default_factory=list)
    unmatched: list[LabelCoverage] = field(default_factory=list)


def _float_attr(tag: Control | ObjectTag, key: str, default: float) -> float:
    raw = tag.attrs.get(key)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        raise UnsupportedConfig(
            f"<{tag.tag} {tag.name!r}>: {key}={raw!r} is not a number."
        ) from None


class YoloBackend(Backend):
    """Pre-annotates images with ultralytics YOLO models and fine-tunes them per project."""

    name: ClassVar[str] = "yolo"
    controls: ClassVar[frozenset[str]] = frozenset(
        {
            "RectangleLabels",
            "PolygonLabels",
            "BrushLabels",
            "KeyPointLabels",
            "Choices",
            "VideoRectangle",
        }
    )
    heavy_modules: ClassVar[tuple[str, ...]] = ("torch", "ultralytics", "cv2")
    #: Compute-bound: one call at a time (inference holds the model's lock and every core),
    #: of enough tasks that images are fetched and decoded while the model runs.
    bulk: ClassVar[BulkHints] = BulkHints(batch_size=32, concurrency=1)

    class Settings(YoloSettings):
        """See :class:`prelabel_yolo.settings.YoloSettings`."""

    def __init__(self, settings: BackendSettings | None = None) -> None:
        super().__init__(settings)
        self.stats = PredictStats()
        self._cache: ModelCache | None = None
        self._plans: OrderedDict[tuple[Any, ...], Plans] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def _settings(self) -> YoloSettings:
        assert isinstance(self.settings, self.Settings)
        return self.settings

    def load(self) -> None:
        """Import ultralytics, set torch's threads, load and warm up the ``preload`` models.

        Every model is warmed up as it loads (:mod:`prelabel_yolo.warmup`), so once this
        returns the first ``/predict`` runs as fast as later ones. Ultralytics pip-installs
        missing optional packages at run time (e.g. a HEIF decoder when an image is
        unreadable); a server must not, so that is off unless ``YOLO_AUTOINSTALL`` is set.
        Its usage analytics are off too (:mod:`prelabel_yolo.telemetry`).
        """
        os.environ.setdefault("YOLO_AUTOINSTALL", "false")
        try:
            import ultralytics  # noqa: F401  (fail at start, naming the package)
        except ImportError as exc:
            raise BackendLoadError(
                f"The yolo backend needs ultralytics: pip install prelabel-yolo ({exc})."
            ) from exc
        telemetry.turn_off()
        use_torch_threads(self.threads)
        cache = self.models
        for kind in self._settings.preload:
            cache.base(getattr(self._settings, f"{kind}_model"))

    @property
    def models(self) -> ModelCache:
        """The process's model cache (weights root: :attr:`home`, ``PRELABEL_MODEL_DIR``)."""
        with self._lock:
            if self._cache is None:
                settings = self._settings
                self._cache = ModelCache(
                    self.home,
                    settings.tuned_cache_size,
                    self._ready,
                    settings.runtime,
                    settings.device,
                )
            return self._cache

    def _ready(self, yolo: Any, exported: Path | None) -> None:
        keep_threads(yolo, self.threads)
        if exported is not None:
            serve_on_threads(yolo, exported, self.threads)
        warm_up(yolo, self._settings.imgsz, self._settings.device)

    def check_config(self, config: LabelConfig) -> None:
        """Refuse configs with no image control, unusable models, or labels that map nothing.

        Models a config uses are loaded here if no earlier config loaded them (then cached
        for every project): the first ``/setup`` with a model outside ``preload`` pays its
        load time (0.1 to 1 s for the *n* models), and on OpenVINO its export the first time
        the weights file is seen (about 4 s for the *n* models).
        """
        super().check_config(config)
        self._plan(config, self._settings, None)

    def label_coverage(self, config: LabelConfig) -> Sequence[LabelCoverage]:
        """Per control, which base-model classes map to which labels (``predicted_values``,
        exact, case-insensitive), which classes are dropped and which labels stay empty."""
        plans = self._plan(config, self._settings, None)
        found = []
        for plan in plans.images:
            if plan.keypoint_labels:
                points = {
                    f"keypoint {i}": label for i, label in sorted(plan.keypoint_labels.items())
                }
                missing = tuple(n for n in plan.control.label_names if n not in points.values())
                found.append(
                    LabelCoverage(
                        plan.control.name,
                        plan.control.tag,
                        plan.control.label_names,
                        "classes",
                        points,
                        unreachable=missing,
                    )
                )
            if plan.box_control is not None or not plan.keypoint_labels:
                control = plan.box_control or plan.control
                found.append(LabelCoverage.from_label_map(control, plan.label_map))
        found += [LabelCoverage.from_label_map(v.labels, v.label_map) for v in plans.videos]
        return found + plans.unmatched

    def _plan(self, config: LabelConfig, settings: YoloSettings, model_dir: Path | None) -> Plans:
        key = (config.hash, settings.model_dump_json(), model_dir)
        with self._lock:
            if key in self._plans:
                self._plans.move_to_end(key)
                return self._plans[key]
        plans = self._build_plans(config, settings, model_dir)
        with self._lock:
            self._plans[key] = plans
            while len(self._plans) > 64:
                self._plans.popitem(last=False)
        return plans

    def _build_plans(
        self, config: LabelConfig, settings: YoloSettings, model_dir: Path | None
    ) -> Plans:
        controls = image_controls(config)
        videos = video_controls(config)
        if not controls and not videos:
            raise UnsupportedConfig(
                "The yolo backend fills RectangleLabels, PolygonLabels, BrushLabels, "
                "KeyPointLabels or Choices on an <Image>, or VideoRectangle on a <Video>, "
                'whose value is a task field (value="$image"); this config has none.'
            )
        grouping = {c.attrs.get("model_bbox_control", "") for c in controls} - {""}
        plans = Plans()
        classes: dict[str, list[str]] = {}
        for control in controls:
            if control.name in grouping:
                continue  # filled by the keypoint control that groups its instances
            plan = self._control_plan(config, control, settings, model_dir)
            classes[control.name] = plan.model.names
            if len(plan.label_map) or plan.keypoint_labels:
                plans.images.append(plan)
            else:
                log.warning("control %r: no model class maps to its labels", control.name)
                plans.unmatched.append(LabelCoverage.from_label_map(control, plan.label_map))
        for control in videos:
            video = self._video_plan(config, control, settings, model_dir)
            classes[control.name] = video.model.names
            if len(video.label_map):
                plans.videos.append(video)
            else:
                log.warning("control %r: no model class maps to its labels", control.name)
                plans.unmatched.append(LabelCoverage.from_label_map(video.labels, video.label_map))
        if not plans.images and not plans.videos:
            listing = "; ".join(f"{name}: {', '.join(c)}" for name, c in classes.items())
            raise UnsupportedConfig(
                "None of the model classes match the labels of this config, so the yolo "
                f"backend would predict nothing. The models' classes are — {listing}. "
                'Rename labels or add predicted_values="<class>,…" to them.'
            )
        return plans

    def _model_for(
        self, control: Control, settings: YoloSettings, model_dir: Path | None
    ) -> LoadedModel:
        tuned = tuned_weights(model_dir, control)
        try:
            if tuned is not None:
                return self.models.tuned(tuned)
            name = control.attrs.get("model_path") or getattr(settings, DEFAULT_MODEL[control.type])
            return self.models.base(name)
        except BackendLoadError as exc:
            raise UnsupportedConfig(f"Control {control.name!r}: {exc}") from exc

    def _control_plan(
        self,
        config: LabelConfig,
        control: Control,
        settings: YoloSettings,
        model_dir: Path | None,
    ) -> ControlPlan:
        model = self._model_for(control, settings, model_dir)
        if model.task not in TASKS_FOR[control.type]:
            raise UnsupportedConfig(
                f"Control {control.name!r} ({control.tag}) needs a "
                f"{' or '.join(TASKS_FOR[control.type])} model; {model.key} is a {model.task} model."
            )
        plan = ControlPlan(
            control=control,
            model=model,
            label_map=LabelMap.build(control, model.names),
            conf=_float_attr(control, "model_score_threshold", settings.score_threshold),
            iou=_float_attr(control, "model_iou", settings.iou),
            max_det=int(_float_attr(control, "model_max_det", settings.max_det)),
            floor=settings.uncertainty_floor,
            point_size=_float_attr(control, "model_point_size", 0.5),
        )
        if control.type == "keypointlabels":
            plan.keypoint_labels = keypoint_labels(control, model.keypoints)
            box_name = control.attrs.get("model_bbox_control")
            if box_name:
                plan.box_control = config.control(box_name)
                plan.label_map = LabelMap.build(plan.box_control, model.names)
        return plan

    def _video_plan(
        self,
        config: LabelConfig,
        control: Control,
        settings: YoloSettings,
        model_dir: Path | None,
    ) -> VideoPlan:
        if importlib.util.find_spec("lap") is None:
            raise UnsupportedConfig(
                "VideoRectangle tracking needs the 'lap' package (a dependency of prelabel-yolo): "
                "pip install 'lap>=0.5.12'."
            )
        model = self._model_for(control, settings, model_dir)
        if model.task not in ("detect", "segment", "pose"):
            raise UnsupportedConfig(
                f"Control {control.name!r} (VideoRectangle) needs a detect, segment or pose "
                f"model; {model.key} is a {model.task} model."
            )
        labels = labels_control(config, control)
        conf = _float_attr(control, "model_score_threshold", settings.score_threshold)
        framerate = _float_attr(control.objects[0], "framerate", LS_DEFAULT_FRAMERATE)
        if framerate <= 0:
            raise UnsupportedConfig(f"<Video {control.objects[0].name!r}> has framerate <= 0.")
        return VideoPlan(
            control=control,
            labels=labels,
            model=model,
            label_map=LabelMap.build(labels, model.names),
            conf=conf,
            iou=_float_attr(control, "model_iou", settings.iou),
            floor=settings.uncertainty_floor,
            tracker=tracker_options(control, conf, settings.tracker),
            stride=max(1, int(_float_attr(control, "model_frame_stride", settings.video_stride))),
            max_frames=max(
                0, int(_float_attr(control, "model_max_frames", settings.video_max_frames))
            ),
            framerate=framerate,
        )

    def predict(
        self, tasks: Sequence[Mapping[str, Any]], ctx: Context
    ) -> Sequence[TaskPredictions]:
        """Batched inference over every image of the call, fetched one batch ahead; videos tracked."""
        if not tasks:
            return []
        settings = ctx.settings
        assert isinstance(settings, self.Settings)
        plans = self._plan(ctx.label_config, settings, ctx.model_dir)
        stats = PredictStats()
        try:
            return [_prediction(found) for found in self._run(tasks, plans, ctx, settings, stats)]
        finally:
            self.stats.merge(stats)
            for model_class, n in stats.unmapped.items():
                ctx.count_dropped("unmapped", model_class, n)

    def _run(
        self,
        tasks: Sequence[Mapping[str, Any]],
        plans: Plans,
        ctx: Context,
        settings: YoloSettings,
        stats: PredictStats,
    ) -> list[list[Outcome]]:
        """Per task: the outcome of each image control, then of each video control that read it."""
        outcomes: list[list[Outcome]] = [[] for _ in tasks]
        if plans.images:
            self._predict_images(tasks, plans.images, ctx, settings, outcomes, stats)
        for video in plans.videos:
            for task, found in zip(tasks, outcomes, strict=True):
                outcome = track_task(video, task, ctx.media, self._run_options(settings), stats)
                if outcome is not None:
                    found.append(outcome)
        return outcomes

    def _predict_images(
        self,
        tasks: Sequence[Mapping[str, Any]],
        plans: Sequence[ControlPlan],
        ctx: Context,
        settings: YoloSettings,
        outcomes: list[list[Outcome]],
        stats: PredictStats,
    ) -> None:
        keys = {p.object_name: p.control.objects[0].value_key or "" for p in plans}
        for start, images in batches(tasks, keys, ctx.media, self._batch_size(settings)):
            for plan in plans:
                column = images[plan.object_name]
                rows = [i for i, image in enumerate(column) if image is not None]
                if rows:
                    results = self._infer(plan, [column[i] for i in rows], settings)
                    for i, result in zip(rows, results, strict=True):
                        outcomes[start + i].append(convert(plan, result, stats))
            unreadable = {i for col in images.values() for i, im in enumerate(col) if im is None}
            stats.add(unreadable=len(unreadable))

    def _batch_size(self, settings: YoloSettings) -> int:
        if settings.batch_size != "auto":
            return settings.batch_size
        # On OpenVINO, batches of 4 ran 1.08x single images for 170 MiB more peak memory;
        # on PyTorch 1.30x for 95 MiB (benchmarks/bench_yolo.py, served_by_batch_size).
        return 1 if self.models.runtime == "openvino" else 4

    def _run_options(self, settings: YoloSettings) -> dict[str, Any]:
        options: dict[str, Any] = {"imgsz": settings.imgsz, "batch": self._batch_size(settings)}
        if settings.device:
            options["device"] = settings.device
        return options

    def _infer(self, plan: ControlPlan, images: list[Any], settings: YoloSettings) -> Any:
        options: dict[str, Any] = {
            "conf": plan.run_conf,
            "iou": plan.iou,
            "max_det": plan.max_det,
            "imgsz": settings.imgsz,
            "verbose": False,
            "retina_masks": plan.control.type == "brushlabels",
        }
        if settings.device:
            options["device"] = settings.device
        with plan.model.lock:
            return plan.model.yolo.predict(images, **options)

    def evaluate(self, tasks: Sequence[Mapping[str, Any]], ctx: Context) -> Evaluation:
        """The promotion gate's score: mAP50-95 for boxes and polygons, agreement for the rest.

        See :mod:`prelabel_yolo.evaluation`. Runs every control once; what it finds is not
        served, so it stays out of :attr:`stats`.
        """
        settings = ctx.settings
        assert isinstance(settings, self.Settings)
        plans = self._plan(ctx.label_config, settings, ctx.model_dir)
        lowered = [
            replace(p, conf=EVAL_CONF, floor=EVAL_CONF) if p.control.type in RANKED else p
            for p in plans.images
        ]
        found = self._run(
            unannotated(tasks), Plans(lowered, plans.videos), ctx, settings, PredictStats()
        )
        controls = [
            Scored(
                {p.control.name} | ({p.box_control.name} if p.box_control else set()),
                p.conf if p.control.type in RANKED else None,
            )
            for p in plans.images
        ] + [Scored({v.control.name}) for v in plans.videos]
        predicted = [[r.to_ls() for o in outcomes for r in o.regions] for outcomes in found]
        return score(controls, predicted, [judged_result(t) for t in tasks])

    def fit(self, job: TrainJob) -> TrainResult | None:
        """Fine-tune each trainable control's model on the project's annotations.

        See :mod:`prelabel_yolo.training`; weights go to ``job.workdir/<control>.pt``.
        """
        from prelabel_yolo.training import fit_controls

        settings = job.settings
        assert isinstance(settings, self.Settings)
        bases = {}
        for control in image_controls(job.label_config):
            tuned = tuned_weights(job.base_dir, control)
            if tuned is not None:
                bases[control.name] = str(tuned)
            elif control.type in DEFAULT_MODEL:
                name = control.attrs.get("model_path") or getattr(
                    settings, DEFAULT_MODEL[control.type]
                )
                bases[control.name] = self.models.base(name).key
        metrics = fit_controls(job, bases, settings, self.threads)
        return TrainResult(metrics=metrics) if metrics else None

    @classmethod
    def conformance_scenarios(cls) -> Sequence[Scenario]:
        """COCO-labelled boxes on synthetic images, for ``prelabel check yolo``."""
        from prelabel_yolo.synthetic import coco_scenario

        return [coco_scenario()]


def _prediction(outcomes: Sequence[Outcome]) -> Prediction:
    """The task's regions; its probabilities are the least confident control's distribution."""
    regions = [region for outcome in outcomes for region in outcome.regions]
    distributions = [o.distribution for o in outcomes if o.distribution]
    if not distributions:
        return Prediction(result=regions)
    least = min(distributions, key=lambda d: max(d) / sum(d) if sum(d) > 0 else 1.0)
    return Prediction(result=regions, probabilities=least)
