"""Beam ModelHandlers for the two model stages.

Handlers are pickled with the pipeline: ``__init__`` keeps only config; models load in
``load_model`` on the worker. ``run_inference`` never lets one bad image fail its batch: when
the batched call raises, the batch is retried image by image and failures come back as
:class:`ErrorRecord` results in place of the image's bundle.
"""
from __future__ import annotations

import dataclasses
import logging
import sys
from typing import Any, Callable, Iterable, Optional, Sequence, Union

from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import ModelHandler

from ovlabel.engine.config import ClipConfig, MatchingConfig
from ovlabel.engine.masks import MasksConfig
from ovlabel.engine.records import ErrorRecord, ImageBundle
from ovlabel.pipelines.options import StageOptions

log = logging.getLogger(__name__)
Result = Union[ImageBundle, ErrorRecord]


def error_from_exception(stage: str, bundle: ImageBundle, exc: BaseException) -> ErrorRecord:
    return ErrorRecord(image_id=bundle.record.image_id, image_uri=bundle.record.image_uri, stage=stage,
                       error_type=type(exc).__name__, message=str(exc) or repr(exc), input_row=bundle.record.raw,
                       row_index=bundle.record.row_index)


def run_isolated(stage: str, batch: Sequence[ImageBundle], fn: Callable[[Sequence[ImageBundle]], list[ImageBundle]]) -> list[Result]:
    """``fn`` over the whole batch; on failure, over each bundle alone so only the bad ones fail."""
    try:
        return list(fn(batch))
    except Exception:  # noqa: BLE001 - isolate below
        if len(batch) == 1:
            return [error_from_exception(stage, batch[0], sys.exc_info()[1])]  # type: ignore[arg-type]
        log.warning("%s: batch of %d failed; retrying image by image", stage, len(batch), exc_info=True)
    results: list[Result] = []
    for bundle in batch:
        try:
            results.extend(fn([bundle]))
        except Exception as exc:  # noqa: BLE001 - becomes an error row
            results.append(error_from_exception(stage, bundle, exc))
    return results


class _BundleHandler(ModelHandler[ImageBundle, Result, Any]):
    """What both model stages share: batching by image count, sizing by pixels, GPU sharing.

    ``stage`` names the stage in error rows; ``options`` are its workers' (batch size, accelerator).
    """

    namespace = ""

    def __init__(self, stage: str, options: StageOptions, device: str, accelerated: bool = True) -> None:
        super().__init__()
        self.stage = stage
        self._max_batch_size = options.images_per_batch
        self._on_gpu = accelerated and (options.accelerator is not None or device.startswith("cuda"))
        self._threads = options.torch_threads
        self._keep_freed_mib = options.keep_freed_memory_mib

    def _prepare_worker(self) -> None:
        """This worker's torch threads and allocator (both process-wide), before its model loads."""
        from ovlabel.engine.memory import keep_freed_memory
        from ovlabel.engine.weights import set_torch_threads

        set_torch_threads(self._threads)
        keep_freed_memory(self._keep_freed_mib)

    def batch_elements_kwargs(self) -> dict[str, Any]:
        return {"min_batch_size": 1, "max_batch_size": self._max_batch_size}

    def get_num_bytes(self, batch: Sequence[ImageBundle]) -> int:
        """Pixels in the batch (Beam's default would pickle every batch to measure it)."""
        return sum(int(b.image.nbytes) if b.image is not None else 1 for b in batch)

    def share_model_across_processes(self) -> bool:
        """One model copy per GPU machine, shared by the SDK worker processes."""
        return self._on_gpu

    def get_metrics_namespace(self) -> str:
        return self.namespace

    def _isolated(self, batch: Sequence[ImageBundle], fn: Callable[[Sequence[ImageBundle]], list[ImageBundle]]) -> list[Result]:
        return run_isolated(self.stage, batch, fn)


class MaskModelHandler(_BundleHandler):
    """The mask stage: any registered engine MaskGenerator; only an accelerated one uses ``masks.device``.

    The generator's registry entry travels with the handler, so workers build it whether or not
    they imported the module that registered it.
    """

    namespace = "ovlabel.masks"

    def __init__(self, stage: str, cfg: MasksConfig, options: StageOptions) -> None:
        self._spec = cfg.spec
        self._device = cfg.device if self._spec.accelerated else "cpu"
        super().__init__(stage, options, self._device, self._spec.accelerated)
        self._settings = cfg.settings

    def load_model(self) -> Any:
        from ovlabel.engine.weights import pick_device

        self._prepare_worker()
        return self._spec.build(self._settings, pick_device(self._device))

    def run_inference(self, batch: Sequence[ImageBundle], model: Any, inference_args: Optional[dict[str, Any]] = None) -> Iterable[Result]:
        def generate(bundles: Sequence[ImageBundle]) -> list[ImageBundle]:
            masks = model.generate([b.image for b in bundles], [b.image_id for b in bundles])
            return [b.replace(masks=m) for b, m in zip(bundles, masks)]

        return self._isolated(batch, generate)


class MatchModelHandler(_BundleHandler):
    """The matching stage: an engine RegionMatcher over an open_clip RegionEmbedder."""

    namespace = "ovlabel.clip"

    def __init__(self, stage: str, clip: ClipConfig, matching: MatchingConfig, options: StageOptions,
                 captionless_words: Sequence[str] = ()) -> None:
        super().__init__(stage, options, clip.device)
        self._clip = clip
        self._matching = matching
        self._captionless_words = tuple(captionless_words)  # RegionMatcher's: the vocabulary's classes
        # the image encoder's work, for run.json: crops asked for, rows encoded, of them padding
        self._work = {what: Metrics.counter(self.namespace, f"{stage}.encoder_{what}")
                      for what in ("crops", "rows", "padding")}

    def load_model(self) -> Any:
        from ovlabel.engine.matching import RegionMatcher, build_region_embedder
        from ovlabel.engine.weights import pick_device

        self._prepare_worker()
        embedder = build_region_embedder(self._clip, self._matching.crop_mode, pick_device(self._clip.device))
        return RegionMatcher(embedder, self._matching, captionless_words=self._captionless_words)

    def run_inference(self, batch: Sequence[ImageBundle], model: Any, inference_args: Optional[dict[str, Any]] = None) -> Iterable[Result]:
        from ovlabel.engine.matching import ImageInput

        def match(bundles: Sequence[ImageBundle]) -> list[ImageBundle]:
            found = model.match_batch([ImageInput(b.image, b.masks, b.parses) for b in bundles])
            return [b.replace(matches=m) for b, m in zip(bundles, found)]

        before = _work_of(model.embedder)
        results = self._isolated(batch, match)
        after = _work_of(model.embedder)
        if before is not None and after is not None:
            for what, counter in self._work.items():
                counter.inc(getattr(after, what) - getattr(before, what))
        return results


def _work_of(embedder: Any) -> Any:
    """A copy of what ``embedder``'s image encoder has done so far (an EncoderWork), or None if it does not count."""
    work = getattr(embedder, "work", None)
    return dataclasses.replace(work) if work is not None else None
