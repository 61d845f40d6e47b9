"""Segment Anything for Label Studio: the annotator clicks or draws a box, SAM returns the mask.

Interactive calls (Label Studio's smart tools, protocol §5) turn the context's clicks and boxes
into objects (:mod:`prelabel_sam.prompts`), segment each with the image's cached embedding
(:mod:`prelabel_sam.embeddings`) and answer with ``BrushLabels`` masks or ``PolygonLabels``
outlines labelled as the prompt was. Calls without a context (Retrieve Predictions, a task
opened in the editor) get an empty prediction per task and queue the tasks' images for
background embedding (:mod:`prelabel_sam.prefetch`), as do ``TASKS_CREATED`` webhooks.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from prelabel import (
    Backend,
    BackendLoadError,
    BackendSettings,
    Context,
    Control,
    LabelConfig,
    LabelMap,
    MediaError,
    MediaResolver,
    Prediction,
    Region,
    TaskPredictions,
    UnsupportedConfig,
)
from prelabel import results as R
from prelabel.threads import use_torch_threads
from prelabel.vision.cache import ModelCache
from prelabel.vision.images import decode_image, image_url
from prelabel.vision.weights import find_weights
from prelabel_sam.embeddings import CacheStats, EmbeddingCache, ImageKey
from prelabel_sam.masks import mask_polygons
from prelabel_sam.model import WHERE_TO_GET, Embedding, SamModel, load_sam, resolve_device
from prelabel_sam.prefetch import Job, Prefetcher, Priority
from prelabel_sam.prompts import ObjectPrompt, object_prompts

if TYPE_CHECKING:
    from prelabel.testing import Scenario

__all__ = ["SamBackend"]

log = logging.getLogger(__name__)

OUTPUT_TAGS = {"brush": "BrushLabels", "polygon": "PolygonLabels"}
PROMPT_TAGS = ("KeyPointLabels", "RectangleLabels")
#: Most objects segmented per call (an annotator draws one or a few; this bounds a flood).
MAX_OBJECTS = 64


def output_controls(config: LabelConfig, output: str) -> dict[str, Control]:
    """The control each ``Image`` (by name) gets masks in: brush first unless ``output`` says."""
    kinds = ("brush", "polygon") if output == "auto" else (output,)
    found: dict[str, Control] = {}
    for kind in kinds:
        for control in config.controls_of(OUTPUT_TAGS[kind]):
            for obj in control.objects:
                if obj.tag.lower() == "image" and obj.value_key:
                    found.setdefault(obj.name, control)
    return found


@dataclass(frozen=True)
class _Target:
    """One image of a task to segment: its output control and its data key."""

    control: Control
    key: str


class SamBackend(Backend):
    """Interactive segmentation with segment-anything, one cached embedding per image."""

    name: ClassVar[str] = "sam"
    controls: ClassVar[frozenset[str]] = frozenset(OUTPUT_TAGS.values())
    interactive: ClassVar[bool] = True
    heavy_modules: ClassVar[tuple[str, ...]] = ("torch", "segment_anything", "cv2")

    class Settings(BackendSettings):
        """Options (env ``PRELABEL_SAM_*``; those marked per project also via extra_params)."""

        model: str = Field(
            default="sam_vit_b_01ec64.pth",
            description="Checkpoint file in PRELABEL_MODEL_DIR (vit_h, vit_l or vit_b); per project.",
        )
        device: str = Field(
            default="",
            description="torch device ('cpu', 'cuda', 'cuda:1'); empty: CUDA if present.",
        )
        output: Literal["auto", "brush", "polygon"] = Field(
            default="auto",
            description="BrushLabels or PolygonLabels when a config has both (auto: brush); per project.",
        )
        cache_mb: int = Field(
            default=1024, ge=0, description="Memory for image embeddings (4 MiB per image)."
        )
        prefetch_limit: int = Field(
            default=8, ge=0, description="Most images waiting for background embedding; 0: off."
        )
        polygon_tolerance: float = Field(
            default=0.2,
            ge=0.0,
            le=10.0,
            description="Polygon simplification, % of the image's longer side; per project.",
        )
        polygon_min_part: float = Field(
            default=1.0,
            ge=0.0,
            le=100.0,
            description="Parts and holes under this % of the largest part are dropped; per project.",
        )

    def __init__(self, settings: BackendSettings | None = None) -> None:
        super().__init__(settings)
        self.priority = Priority()
        self._models: ModelCache[SamModel] | None = None
        self._cache: EmbeddingCache[Embedding] | None = None
        self._prefetcher: Prefetcher | None = None
        self._lock = threading.Lock()

    @property
    def _settings(self) -> SamBackend.Settings:
        assert isinstance(self.settings, self.Settings)
        return self.settings

    def load(self) -> None:
        """Import torch and segment_anything, set torch's threads, load the default model."""
        with self._lock:
            if self._models is not None:
                return
            try:
                import segment_anything  # noqa: F401  (fail at start, naming the package)
                import torch
            except ImportError as exc:
                raise BackendLoadError(
                    f"The sam backend needs torch and segment-anything: pip install prelabel-sam ({exc})."
                ) from exc
            settings = self._settings
            use_torch_threads(self.threads)
            device = resolve_device(settings.device)
            root = self.home  # PRELABEL_MODEL_DIR: weights resolve only inside it
            models: ModelCache[SamModel] = ModelCache(
                lambda path: load_sam(path, device, self.priority.checkpoint),
                resolve=lambda name: str(find_weights(name, root, where_to_get=WHERE_TO_GET)),
            )
            model = models.base(settings.model)
            self._cache = EmbeddingCache(settings.cache_mb * 2**20, on_urgent=self.priority.wake)
            # Prefetched images must not push out the ones annotators are working on.
            room = settings.cache_mb * 2**20 // model.embedding_bytes
            limit = min(settings.prefetch_limit, max(0, room - 2))
            if limit < settings.prefetch_limit:
                log.warning(
                    "sam: cache_mb=%d holds %d embeddings; prefetching at most %d images",
                    settings.cache_mb,
                    room,
                    limit,
                )
            self._prefetcher = Prefetcher(self._prefetch_one, limit)
            self._models = models
            log.info(
                "sam: %s on %s, %d torch threads, embedding cache %d MiB, prefetch %d",
                model.architecture.name,
                device,
                torch.get_num_threads(),
                settings.cache_mb,
                limit,
            )

    @property
    def cache(self) -> EmbeddingCache[Embedding]:
        """The process's embedding cache (after :meth:`load`)."""
        if self._cache is None:
            raise RuntimeError("SamBackend.load() has not been called")
        return self._cache

    @property
    def prefetcher(self) -> Prefetcher:
        """The background embedding queue (after :meth:`load`)."""
        if self._prefetcher is None:
            raise RuntimeError("SamBackend.load() has not been called")
        return self._prefetcher

    def stats(self) -> CacheStats:
        """The embedding cache's counters."""
        return self.cache.stats()

    def model(self, name: str) -> SamModel:
        """The loaded model for checkpoint ``name``, loading it on first use."""
        if self._models is None:
            raise RuntimeError("SamBackend.load() has not been called")
        try:
            return self._models.base(name)
        except BackendLoadError as exc:
            raise UnsupportedConfig(str(exc)) from exc

    def check_config(self, config: LabelConfig) -> None:
        """Need an output control on an image; smart prompt labels must name its labels."""
        self._targets(config, self._settings.output)

    def _targets(self, config: LabelConfig, output: str) -> dict[str, _Target]:
        controls = output_controls(config, output)
        if not controls:
            wanted = " or ".join(
                OUTPUT_TAGS[k] for k in (("brush", "polygon") if output == "auto" else (output,))
            )
            raise UnsupportedConfig(
                f"The sam backend draws {wanted} on an <Image> whose value is a task field "
                '(value="$image"), prompted by smart KeyPointLabels or RectangleLabels '
                '(smart="true") on the same image; this config has none.'
            )
        for prompt in config.controls_of(*PROMPT_TAGS):
            target = next((controls[o.name] for o in prompt.objects if o.name in controls), None)
            if target is None or not prompt.smart:
                continue
            mapping = LabelMap.build(target, prompt.label_names)
            if mapping.unmapped:
                raise UnsupportedConfig(
                    f"The smart {prompt.tag} {prompt.name!r} has labels "
                    f"{', '.join(map(repr, mapping.unmapped))} that the {target.tag} "
                    f"{target.name!r} lacks: give both controls the same labels (or add "
                    'predicted_values="<prompt label>" to the mask label).'
                )
        return {
            name: _Target(control, config.objects[name].value_key or "")
            for name, control in controls.items()
        }

    def predict(
        self, tasks: Sequence[Mapping[str, Any]], ctx: Context
    ) -> Sequence[TaskPredictions]:
        """Masks for the interactive context; without one, empty predictions and a prefetch."""
        if not tasks:
            return []
        settings = ctx.settings
        assert isinstance(settings, self.Settings)
        targets = self._targets(ctx.label_config, settings.output)
        prompts = object_prompts(ctx.interaction)
        if len(prompts) > MAX_OBJECTS:
            log.warning(
                "sam: %d objects prompted at once; segmenting the first %d",
                len(prompts),
                MAX_OBJECTS,
            )
            prompts = prompts[:MAX_OBJECTS]
        if not prompts:
            self._queue(tasks, targets, settings, ctx.media)
            return [Prediction.empty() for _ in tasks]
        model = self.model(settings.model)
        with self.priority.interactive():
            return [self._segment(task, prompts, targets, model, ctx) for task in tasks]

    def prefetch(self, tasks: Sequence[Mapping[str, Any]], ctx: Context) -> None:
        """Queue the new tasks' images for background embedding."""
        settings = ctx.settings
        assert isinstance(settings, self.Settings)
        self._queue(tasks, self._targets(ctx.label_config, settings.output), settings, ctx.media)

    def _queue(
        self,
        tasks: Sequence[Mapping[str, Any]],
        targets: Mapping[str, _Target],
        settings: SamBackend.Settings,
        media: MediaResolver,
    ) -> None:
        keys = sorted({t.key for t in targets.values()})
        jobs = [
            Job((settings.model, url), (settings.model, url, task.get("id"), media))
            for task in tasks
            for url in (image_url(task, key) for key in keys)
            if url is not None
        ]
        self.prefetcher.submit(jobs)

    def _prefetch_one(self, job: Job) -> None:
        name, url, task_id, media = job.payload
        model = self.model(name)  # here, not on the webhook: a project's own model may load
        try:
            data = media.read_bytes(url, task_id=task_id)
            key = ImageKey.of(model.key, url, data)

            def compute() -> Embedding:
                with self.priority.background(lambda: self.cache.urgent(key)):
                    return model.embed(decode_image(data))

            if self.cache.prefetch(key, compute):
                log.info("sam: embedded task %s's image in the background", task_id)
        except (MediaError, OSError, ValueError) as exc:
            log.warning("sam: cannot prefetch task %s's image %.200s: %s", task_id, url, exc)

    def _embedding(
        self, model: SamModel, url: str, task_id: Any, media: MediaResolver
    ) -> Embedding:
        data = media.read_bytes(url, task_id=task_id)
        return self.cache.get(
            ImageKey.of(model.key, url, data), lambda: model.embed(decode_image(data))
        )

    def _segment(
        self,
        task: Mapping[str, Any],
        prompts: Sequence[ObjectPrompt],
        targets: Mapping[str, _Target],
        model: SamModel,
        ctx: Context,
    ) -> Prediction:
        settings = ctx.settings
        assert isinstance(settings, self.Settings)
        regions: list[Region] = []
        for image in dict.fromkeys(p.image for p in prompts):
            target = targets.get(image)
            url = image_url(task, target.key) if target else None
            if target is None or url is None:
                log.info("sam: task %s has no image %r with a mask control", task.get("id"), image)
                continue
            embedding = self._embedding(model, url, task.get("id"), ctx.media)
            for prompt in (p for p in prompts if p.image == image):
                regions += self._regions(prompt, target.control, model, embedding, settings)
        return Prediction(result=regions)

    def _regions(
        self,
        prompt: ObjectPrompt,
        control: Control,
        model: SamModel,
        embedding: Embedding,
        settings: SamBackend.Settings,
    ) -> list[Region]:
        label = (
            LabelMap.build(control, [prompt.label]).get(prompt.label)
            if prompt.label
            else control.label_names[0]
            if control.label_names
            else None
        )
        if label is None:
            log.warning(
                "sam: prompt label %r is not a label of %s %r; no mask",
                prompt.label,
                control.tag,
                control.name,
            )
            return []
        width, height = embedding.size
        points, point_labels = prompt.points_px(width, height)
        mask, iou = model.segment(embedding, points, point_labels, prompt.box_px(width, height))
        score = min(1.0, max(0.0, iou))
        if not mask.any():
            return []
        if control.type == "brushlabels":
            return [R.brush(control, mask, label=label, image_size=(width, height), score=score)]
        return [
            R.polygon_from_pixels(
                control, outline, image_size=(width, height), label=label, score=score
            )
            for outline in mask_polygons(
                mask,
                tolerance=settings.polygon_tolerance,
                min_part=settings.polygon_min_part,
            )
        ]

    @classmethod
    def conformance_scenarios(cls) -> Sequence[Scenario]:
        """Brush and polygon configs on synthetic images, prompted by clicks and a box."""
        from prelabel_sam.synthetic import conformance_scenarios

        return conformance_scenarios()
