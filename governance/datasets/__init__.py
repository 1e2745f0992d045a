"""Datasets in their published shapes: readers, format detection, cards and curation counts.

The ``prepare_*`` stages call :func:`prepare_dataset` with their params; what
comes back is the canonical records of the stage's kind and everything its
manifest needs (raw-file hashes, the format and whether it was detected, the
dataset card, the counted curation steps, the records quarantined as malformed
per the data policy, counted per reason).
"""

from governance.datasets.cards import DatasetCard, build_card, readme_card
from governance.datasets.curation import Curation, CurationStep
from governance.datasets.formats import (
    BY_NAME,
    FORMATS,
    KINDS,
    MALFORMED,
    Format,
    RecordError,
    as_messages,
    formats_for,
    parse_label,
)
from governance.datasets.prepare import (
    DatasetParams,
    Prepared,
    content_id,
    is_eval,
    prepare_dataset,
    record_id,
    split_and_write,
)
from governance.datasets.quarantine import QUARANTINE_FILE, QuarantineCounts, read_quarantine
from governance.datasets.readers import HF_CACHE_PREFIX, Source, open_source

__all__ = [
    "BY_NAME",
    "FORMATS",
    "HF_CACHE_PREFIX",
    "KINDS",
    "MALFORMED",
    "QUARANTINE_FILE",
    "Curation",
    "CurationStep",
    "DatasetCard",
    "DatasetParams",
    "Format",
    "Prepared",
    "QuarantineCounts",
    "RecordError",
    "Source",
    "as_messages",
    "build_card",
    "content_id",
    "formats_for",
    "is_eval",
    "open_source",
    "parse_label",
    "prepare_dataset",
    "read_quarantine",
    "readme_card",
    "record_id",
    "split_and_write",
]
