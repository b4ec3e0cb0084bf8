"""The labelled stages of the pipeline; each routes its failures to a dead-letter output.

Every stage returns ``(good, errors)``: ``errors`` holds :class:`ErrorRecord` for every input
that failed there, so labelled rows + error rows always equal input rows.
"""
from __future__ import annotations

import logging
import posixpath
from dataclasses import dataclass
from typing import Any, Iterator, Optional

import apache_beam as beam
from apache_beam.ml.inference.base import RunInference

from ovlabel.engine.captions import parse_record_captions
from ovlabel.engine.errors import CaptionError, InputError
from ovlabel.engine.known_labels import KnownLabels, known_labels
from ovlabel.engine.layout import STAGING, open_location
from ovlabel.engine.manifest import RawRow, to_record
from ovlabel.engine.ontology import DROP_REASONS, Vocabulary, classify
from ovlabel.engine.records import ErrorRecord, ImageBundle, InputRecord
from ovlabel.engine.shards import ShardPolicy, ShardWriter
from ovlabel.engine.sources import read_rows
from ovlabel.pipelines.handlers import MaskModelHandler, MatchModelHandler
from ovlabel.pipelines.options import RunConfig
from ovlabel.pipelines import progress
from ovlabel.pipelines.output import read_row_keys
from ovlabel.pipelines.progress import Progress

log = logging.getLogger(__name__)
NAMESPACE = "ovlabel"

# The stages, in pipeline order: error rows name them, and run.json counts them as <stage>.<in|out|errors|skipped>.
VALIDATE_ROWS = "ValidateRows"
DEDUPLICATE = "Deduplicate"
PARSE_CAPTIONS = "ParseCaptions"
LOAD_IMAGES = "LoadImages"
GENERATE_MASKS = "GenerateMasks"
MATCH_REGIONS = "MatchRegions"
BUILD_HIERARCHY = "BuildHierarchy"
STAGES = (VALIDATE_ROWS, DEDUPLICATE, PARSE_CAPTIONS, LOAD_IMAGES, GENERATE_MASKS, MATCH_REGIONS, BUILD_HIERARCHY)
FLOWS = ("in", "out", "errors", "skipped")
UNKNOWN_LABELS = "unknown_labels"  # counter: caption labels outside clip.known_labels (one per row naming one)
UNKNOWN_LABEL = "unknown_label:"  # counter per such label, named after it
NAMED_UNKNOWN = 1000  # labels a worker names in counters (the total counts all)
DROPPED = "vocabulary.dropped."  # counters of the segments BuildHierarchy leaves out, one per ontology.DROP_REASONS


def _exception_text(exc_info: tuple[Any, str, list[str]]) -> tuple[str, str]:
    """(error type, message) from a Beam dead-letter ``(type, repr, traceback lines)``."""
    exc_type, exc_repr, tb = exc_info
    name = getattr(exc_type, "__name__", str(exc_type))
    last = (tb[-1] if tb else "").strip()
    prefix = f"{getattr(exc_type, '__module__', '')}.{name}: "
    for head in (prefix, f"{name}: "):
        if last.startswith(head):
            return name, last[len(head):]
    return name, exc_repr


def dead_letter(stage: str, element: Any, exc_info: tuple[Any, str, list[str]]) -> ErrorRecord:
    """A Beam dead-letter pair -> an error row naming the stage."""
    error_type, message = _exception_text(exc_info)
    record = element.record if isinstance(element, ImageBundle) else element
    if isinstance(record, InputRecord):
        return ErrorRecord(record.image_id, record.image_uri, stage, error_type, message, record.raw, record.row_index)
    if isinstance(record, RawRow):
        data = record.data or {}
        image_id = data.get("image_id")
        image = data.get("image")
        return ErrorRecord(None if image_id is None else str(image_id), image if isinstance(image, str) else None,
                           stage, error_type, message, record.text, record.index)
    return ErrorRecord(None, None, stage, error_type, message, repr(record)[:10_000])


class _Count(beam.DoFn):
    """Passes elements through, counting them as ``<stage>.<what>`` in the ovlabel namespace."""

    def __init__(self, stage: str, what: str) -> None:
        self.counter = beam.metrics.Metrics.counter(NAMESPACE, f"{stage}.{what}")

    def process(self, element: Any) -> Iterator[Any]:
        self.counter.inc()
        yield element


def counted(pcoll: beam.PCollection, stage: str, what: str) -> beam.PCollection:
    return pcoll | f"{stage}Count{what.capitalize()}" >> beam.ParDo(_Count(stage, what))


class _Stage(beam.PTransform):
    """A ParDo with exception handling whose dead letters become error rows of ``stage``.

    Elements in, elements out and errors are counted (``<stage>.in/out/errors``) for run.json.
    """

    def __init__(self, stage: str, fn: beam.DoFn) -> None:
        super().__init__(label=stage)
        self.stage = stage
        self.fn = fn

    def expand(self, pcoll: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        stage = self.stage
        good, bad = counted(pcoll, stage, "in") | "Run" >> beam.ParDo(self.fn).with_exception_handling(threshold=1)
        errors = bad | "ToErrorRows" >> beam.Map(lambda pair: dead_letter(stage, pair[0], pair[1]))
        return counted(good, stage, "out"), counted(errors, stage, "errors")


@dataclass(frozen=True)
class DoneRows:
    """What a resumed run skips: the rows of the shards ``files`` (paths of ``root``'s filesystem)."""

    root: str
    files: tuple[str, ...]

    def keys(self) -> frozenset[tuple[int, str]]:
        return read_row_keys(self.root, self.files)

    @staticmethod
    def keys_of(done: Optional["DoneRows"]) -> frozenset[tuple[int, str]]:
        """The row keys a stage skips: none on a fresh run."""
        return done.keys() if done is not None else frozenset()


class _ValidateRow(beam.DoFn):
    """Manifest row -> InputRecord. On a resumed run, a done row that fails validation is skipped; a done row
    that validates goes on to Deduplicate, which needs it to know the first row of its image_id."""

    def __init__(self, base_dir: str, done: Optional[DoneRows] = None, captions_required: bool = True) -> None:
        self.base_dir = base_dir
        self.done = done
        self.captions_required = captions_required  # False with matching.captionless: vocabulary
        self.skipped = beam.metrics.Metrics.counter(NAMESPACE, f"{VALIDATE_ROWS}.skipped")
        self._done: frozenset[tuple[int, str]] = frozenset()

    def setup(self) -> None:
        self._done = DoneRows.keys_of(self.done)

    def process(self, row: RawRow) -> Iterator[InputRecord]:
        if row.key in self._done:
            try:
                yield to_record(row, self.base_dir, self.captions_required)
            except InputError:
                self.skipped.inc()
            return
        yield to_record(row, self.base_dir, self.captions_required)


def read_manifest(pipeline: beam.Pipeline, manifest: str, base_dir: str, done: Optional[DoneRows] = None,
                  captions_required: bool = True, limit: Optional[int] = None) -> tuple[beam.PCollection, beam.PCollection]:
    """ReadManifest: one reader streams the rows of the manifest, folder or glob (the first ``limit``), then a
    reshuffle spreads them over workers."""
    rows = (pipeline
            | "ManifestPath" >> beam.Create([manifest])
            | "ReadRows" >> beam.FlatMap(read_rows, limit)
            | "Spread" >> beam.Reshuffle())
    return rows | _Stage(VALIDATE_ROWS, _ValidateRow(base_dir, done, captions_required))


class _FirstOfEachId(beam.DoFn):
    """(image_id, records) -> the first manifest row goes on, later ones become error rows; rows a resumed run
    found done are skipped either way."""

    def __init__(self, done: Optional[DoneRows] = None) -> None:
        self.done = done
        self.skipped = beam.metrics.Metrics.counter(NAMESPACE, f"{DEDUPLICATE}.skipped")
        self._done: frozenset[tuple[int, str]] = frozenset()

    def setup(self) -> None:
        self._done = DoneRows.keys_of(self.done)

    def process(self, item: tuple[str, Any]) -> Iterator[Any]:
        image_id, records = item
        first, *rest = sorted(records, key=lambda r: r.row_index)
        for record in (first, *rest):
            if record.key in self._done:
                self.skipped.inc()
            elif record is first:
                yield first
            else:
                yield beam.pvalue.TaggedOutput("errors", ErrorRecord(
                    record.image_id, record.image_uri, DEDUPLICATE, "DuplicateImageId",
                    f"image_id {image_id!r} is already used by manifest row {first.row_index}; "
                    f"give every row a unique image_id", record.raw, record.row_index))


def deduplicate(records: beam.PCollection,
                done: Optional[DoneRows] = None) -> tuple[beam.PCollection, beam.PCollection]:
    """Deduplicate: the first manifest row of each image_id goes on; later ones become error rows."""
    stage = DEDUPLICATE
    out = (counted(records, stage, "in")
           | "ById" >> beam.Map(lambda r: (r.image_id, r))
           | "Group" >> beam.GroupByKey()
           | "FirstWins" >> beam.ParDo(_FirstOfEachId(done)).with_outputs("errors", main="good"))
    return counted(out.good, stage, "out"), counted(out.errors, stage, "errors")


class _ParseCaptions(beam.DoFn):
    """Captions -> parses. With ``known`` (``clip.known_labels``), caption labels outside it are counted (rows per
    label: ``unknown_labels`` and ``unknown_label:<label>``, up to :data:`NAMED_UNKNOWN` names per worker), or make
    the row an error row under ``clip.unknown_labels=refuse``. With ``captionless``, a row with no caption nouns
    passes (``matching.captionless=vocabulary``)."""

    def __init__(self, spacy_model: str, max_chars: int, batch_size: int, known: Optional[KnownLabels] = None,
                 captionless: bool = False) -> None:
        self.spacy_model = spacy_model
        self.max_chars = max_chars
        self.batch_size = batch_size
        self.known = known
        self.captionless = captionless
        self.unknown = beam.metrics.Metrics.counter(NAMESPACE, UNKNOWN_LABELS)
        self._parser: Any = None
        self._named: set[str] = set()

    def setup(self) -> None:
        from ovlabel.engine.captions import CaptionParser

        self._parser = CaptionParser(self.spacy_model, self.batch_size)

    def process(self, record: InputRecord) -> Iterator[ImageBundle]:
        parses = parse_record_captions(self._parser, record.captions, self.max_chars, self.captionless)
        unknown = self.known.unknown_in(parses) if self.known is not None else []
        if unknown and self.known is not None and self.known.refuse:
            raise CaptionError(self.known.row_refusal(unknown))
        for label in unknown:
            self.unknown.inc()
            if label in self._named or len(self._named) < NAMED_UNKNOWN:
                self._named.add(label)
                beam.metrics.Metrics.counter(NAMESPACE, UNKNOWN_LABEL + label).inc()
        yield ImageBundle(record=record, parses=parses)


class _LoadImages(beam.DoFn):
    def __init__(self, cfg: RunConfig) -> None:
        self.images = cfg.images
        self.input = cfg.input

    def process(self, bundle: ImageBundle) -> Iterator[ImageBundle]:
        from ovlabel.engine.images import load_configured

        yield bundle.replace(image=load_configured(bundle.record.image_uri, self.images, self.input))


def parse_captions(records: beam.PCollection, cfg: RunConfig) -> tuple[beam.PCollection, beam.PCollection]:
    fn = _ParseCaptions(cfg.captions.spacy_model, cfg.captions.max_chars, cfg.captions.captions_per_batch,
                        known_labels(cfg.clip), cfg.matching.captionless == "vocabulary")
    return records | _Stage(PARSE_CAPTIONS, fn)


def unknown_label_counts(metrics: dict[str, Any]) -> tuple[int, dict[str, int]]:
    """(rows x labels outside clip.known_labels, label -> rows) from a run's counters (:class:`_ParseCaptions`)."""
    total, named = 0, {}
    for key, value in metrics.items():
        if not isinstance(value, int):
            continue
        if key.rsplit("/", 1)[-1] == UNKNOWN_LABELS:
            total += value
        elif UNKNOWN_LABEL in key:
            label = key.split(UNKNOWN_LABEL, 1)[1]
            named[label] = named.get(label, 0) + value
    return total, dict(sorted(named.items(), key=lambda kv: (-kv[1], kv[0])))


def load_images(bundles: beam.PCollection, cfg: RunConfig) -> tuple[beam.PCollection, beam.PCollection]:
    return bundles | _Stage(LOAD_IMAGES, _LoadImages(cfg))


def _split_results(results: beam.PCollection, stage: str) -> tuple[beam.PCollection, beam.PCollection]:
    parts = results | f"{stage}Split" >> beam.Partition(lambda r, n: int(isinstance(r, ErrorRecord)), 2)
    return parts[0], parts[1]


def _model_stage(bundles: beam.PCollection, stage: str, inference: RunInference,
                 accelerator: Optional[str]) -> tuple[beam.PCollection, beam.PCollection]:
    """RunInference with its dead letters (whole failed batches) and per-image failures as error rows."""
    transform = inference.with_exception_handling()
    if accelerator:
        transform = transform.with_resource_hints(accelerator=accelerator)
    results, dlq = counted(bundles, stage, "in") | stage >> transform
    good, handled = _split_results(results, stage)
    failed = (dlq.failed_inferences
              | f"{stage}FailedBatches" >> beam.FlatMap(lambda pair: [dead_letter(stage, b, pair[1]) for b in pair[0]]))
    errors = (handled, failed) | f"{stage}Errors" >> beam.Flatten()
    return counted(good, stage, "out"), counted(errors, stage, "errors")


def generate_masks(bundles: beam.PCollection, cfg: RunConfig) -> tuple[beam.PCollection, beam.PCollection]:
    handler = MaskModelHandler(GENERATE_MASKS, cfg.masks, cfg.beam.masks)
    return _model_stage(bundles, GENERATE_MASKS, RunInference(handler), cfg.beam.masks.accelerator)


def match_regions(bundles: beam.PCollection, cfg: RunConfig,
                  vocabulary: Optional[Vocabulary] = None) -> tuple[beam.PCollection, beam.PCollection]:
    """MatchRegions; with ``matching.captionless: vocabulary`` and no ``object_vocabulary``, an image whose captions
    name no object is labelled from the classes of ``vocabulary``."""
    captionless = cfg.matching.captionless == "vocabulary" and vocabulary is not None
    words = vocabulary.classes if captionless and vocabulary is not None else ()
    handler = MatchModelHandler(MATCH_REGIONS, cfg.clip, cfg.matching, cfg.beam.matching, words)
    return _model_stage(bundles, MATCH_REGIONS, RunInference(handler), cfg.beam.matching.accelerator)


class _BuildHierarchy(beam.DoFn):
    """An image's matches -> its labels row: the segment tree, each segment with its class (the vocabulary was
    loaded on the driver and travels with the DoFn); segments the unmapped policy drops are counted per reason
    (``vocabulary.dropped.<reason>``, run.json's ``vocabulary.dropped``)."""

    def __init__(self, provenance: dict[str, str], vocabulary: Optional[Vocabulary], unmapped: str) -> None:
        self.provenance = provenance
        self.vocabulary = vocabulary
        self.unmapped = unmapped
        self.segments = beam.metrics.Metrics.distribution(NAMESPACE, "segments_per_image")
        self.dropped = {reason: beam.metrics.Metrics.counter(NAMESPACE, f"{DROPPED}{reason}")
                        for reason in DROP_REASONS}

    def process(self, bundle: ImageBundle) -> Iterator[dict[str, Any]]:
        from ovlabel.engine.hierarchy import tree_of
        from ovlabel.engine.layout import labels_row

        found = classify(tree_of(bundle.matches), self.vocabulary, self.unmapped)
        for reason in found.dropped:
            self.dropped[reason].inc()
        self.segments.update(len(found.segments))
        yield labels_row(bundle.record, bundle.image.shape[:2], found.segments, self.provenance)


def build_hierarchy(bundles: beam.PCollection, provenance: dict[str, str], cfg: RunConfig,
                    vocabulary: Optional[Vocabulary]) -> tuple[beam.PCollection, beam.PCollection]:
    fn = _BuildHierarchy(provenance, vocabulary, cfg.vocabulary.unmapped)
    return bundles | _Stage(BUILD_HIERARCHY, fn)


@dataclass(frozen=True)
class ShardTarget:
    """Where a run publishes: ``root``'s folder ``under`` (() itself; (_next, run_id) for an overwrite)."""

    root: str
    under: tuple[str, ...]
    run_id: str
    policy: ShardPolicy


class _WriteShards(beam.DoFn):
    """Rows of one kind -> shards published as the run goes (:class:`ovlabel.engine.shards.ShardWriter`)."""

    def __init__(self, kind: str, target: ShardTarget) -> None:
        self.kind = kind
        self.target = target
        self.shards = beam.metrics.Metrics.counter(NAMESPACE, f"{kind}_shards_published")
        self._writer: Optional[ShardWriter] = None
        self._progress: Optional[Progress] = None

    def setup(self) -> None:
        t = self.target
        fs, path = open_location(t.root)
        self._writer = ShardWriter(fs, self.kind, posixpath.join(path, STAGING, t.run_id, self.kind),
                                   posixpath.join(path, *t.under, self.kind), t.run_id, t.policy)
        self._progress = progress.lookup(t.run_id)  # None in a worker of another process

    def process(self, row: dict[str, Any]) -> None:
        assert self._writer is not None
        if self._writer.add(row) is not None:
            self.shards.inc()
        if self._progress is not None:
            self._progress.tick(self.kind, row.get("stage"))

    def finish_bundle(self) -> None:
        assert self._writer is not None
        if self._writer.flush() is not None:
            self.shards.inc()


def write_shards(rows: beam.PCollection, kind: str, target: ShardTarget) -> None:
    """WriteShards: ``kind`` rows published under the target as they come (every N rows or M seconds)."""
    rows | f"Write{kind.capitalize()}Shards" >> beam.ParDo(_WriteShards(kind, target))
