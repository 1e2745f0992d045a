"""Dataset cards: where a dataset came from, under which licence, and how it was collected.

A card is assembled from what the dataset publishes about itself — a Hugging
Face dataset ``README.md`` (its YAML front matter and first paragraph) in a
``save_to_disk`` folder, the ``dataset_info`` that ``datasets`` stores — and a
``card:`` block in the stage's params (a platform team's own record of where a
file came from), which fills the fields the publisher left empty. Params are
not reviewed, so they never restate what the publisher published: a params
value that differs (``license: apache-2.0`` over a README's ``cc-by-nc-4.0``)
is kept beside it as a conflict, which the report states, and the card keeps
the publisher's. Each field notes its origin, so a reviewer can tell a
publisher's claim from a team's.

The card's ``malformed`` entry says what the detected format treats as
malformed rather than repairable, what the policy did with such records
(``fail`` or ``quarantine``) and how many it set aside, per reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from governance.datasets.formats import FILE_ERRORS, MALFORMED, MALFORMED_ANY
from governance.datasets.readers import Source
from governance.policy import Strict

CARD_FIELDS = ("name", "source", "license", "collection", "citation", "rights_reservation")


class DatasetCard(Strict):
    """The ``card:`` block of a ``prepare_*`` params section (all optional; unknown keys are errors)."""

    name: str | None = None
    source: str | None = None  # where the data came from: a URL, a Hub id, a team
    license: str | None = None  # SPDX id where there is one
    collection: str | None = None  # how the data was collected and annotated
    citation: str | None = None
    # How reservations of rights / opt-outs (EU DSM Directive Art. 4(3), e.g. robots.txt, TDM-reservation
    # metadata) were identified and honoured for this data, or why none apply; absent: "not assessed"
    rights_reservation: str | None = None


def readme_card(readme: Path) -> dict[str, str]:
    """Card fields from a Hugging Face dataset README: front-matter licence/name, first paragraph."""
    text = readme.read_text(encoding="utf-8", errors="replace")
    meta: dict[str, Any] = {}
    body = text
    if text.startswith("---"):
        head, sep, rest = text[3:].partition("\n---")
        if sep:
            try:
                loaded = yaml.safe_load(head)
            except yaml.YAMLError:
                loaded = None
            meta = loaded if isinstance(loaded, dict) else {}
            body = rest
    out: dict[str, str] = {}
    license_ = meta.get("license")
    if isinstance(license_, list):
        license_ = ", ".join(map(str, license_))
    if license_:
        out["license"] = str(license_)
    if meta.get("pretty_name"):
        out["name"] = str(meta["pretty_name"])
    if meta.get("source_datasets"):
        sources = meta["source_datasets"]
        out["source"] = ", ".join(map(str, sources)) if isinstance(sources, list) else str(sources)
    paragraph = next(
        (p.strip() for p in body.split("\n\n") if p.strip() and not p.lstrip().startswith(("#", "---"))), ""
    )
    if paragraph:
        out["collection"] = " ".join(paragraph.split())[:500]
    return out


def build_card(source: Source, declared: DatasetCard | None) -> dict[str, Any]:
    """The dataset's card: published fields, the params ``card:`` block filling the rest, with origins; where
    params declare another value than a published one, ``conflicts`` holds both (the card keeps the publisher's)."""
    fields: dict[str, str] = {}
    origin: dict[str, str] = {}
    conflicts: dict[str, dict[str, str]] = {}

    def take(values: dict[str, Any], where: str) -> None:
        for key, value in values.items():
            if key not in CARD_FIELDS or not value:
                continue
            value = " ".join(str(value).split())[:500]
            if where == "params" and key in fields:
                if fields[key] != value:
                    conflicts[key] = {"published": fields[key], "published_in": origin[key], "params": value}
                continue
            fields[key], origin[key] = value, where

    info = source.info
    take(
        {
            "name": info.get("dataset_name"),
            "license": info.get("license"),
            "source": info.get("homepage"),
            "collection": info.get("description"),
            "citation": info.get("citation"),
        },
        "dataset_info",
    )
    if source.folder is not None and (source.folder / "README.md").is_file():
        take(readme_card(source.folder / "README.md"), "README.md")
    if declared is not None:
        take(declared.model_dump(exclude_none=True), "params")
    missing = [key for key in ("source", "license") if key not in fields]
    return {**fields, "origin": origin, "missing": missing, **({"conflicts": conflicts} if conflicts else {})}


def malformed_card(format_name: str, summary: dict[str, Any]) -> dict[str, Any]:
    """The card's ``malformed`` entry: the format's malformed/repaired rules and the quarantine counts.

    ``summary`` is the manifest's ``quarantine`` section (counts and reasons, no record text).
    """
    rules = MALFORMED.get(format_name, {})
    malformed = "; ".join(part for part in (rules.get("malformed"), MALFORMED_ANY) if part)
    return {
        "format": format_name,
        "malformed": malformed,
        "repaired": rules.get("repaired", ""),
        "never_quarantined": FILE_ERRORS,
        **{key: summary.get(key) for key in ("rule", "action", "max_fraction", "records_read", "quarantined")},
        "by_reason": dict(summary.get("by_reason") or {}),
        "file": summary.get("file"),
    }
