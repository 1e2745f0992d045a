"""Render collected facts as a self-contained HTML page, the same content as Markdown, and a model card.

HTML: one file, CSS and SVG pictures inline, no script, no external fetch — it
opens offline from disk and prints. Markdown: the same sections, pictures as
``figures/*.svg`` beside it. Model card: a Hugging Face style ``README.md``
with YAML metadata (licence, base model, tags, dataset hashes, model-index).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, FileSystemBytecodeCache, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from governance.monitoring.charts import trend_svg
from governance.report.charts import eval_thresholds_svg, training_curves_svg
from governance.report.compliance import SECTION_NUMBERS, SECTIONS
from governance.report.lineage_graph import lineage_svg
from governance.report.record import ReportFacts
from governance.report.verdict import Verdict

TEMPLATES = Path(__file__).with_name("templates")
NOT_RECORDED = "not recorded"
_HEX_DIGEST = re.compile(r"[0-9a-f]{32,64}")


@dataclass(frozen=True)
class ReportFiles:
    """Where one rendering went."""

    out_dir: Path
    html: Path
    markdown: Path
    model_card: Path
    facts: Path
    figures: dict[str, Path]
    documentation: Path | None = None


def fmt(value: Any) -> str:
    """A value for display: 4 significant digits for floats, thousands separators for ints."""
    if value is None:
        return NOT_RECORDED
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        if value.is_integer() and abs(value) < 1e12:  # counts logged as floats (tokens, rows)
            return f"{int(value):,}"
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
            return f"{value:.3e}"
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return ", ".join(fmt(v) for v in value) if value else "none"
    if isinstance(value, dict):  # None entries (e.g. no first failing line) are left out, not "not recorded"
        return ", ".join(f"{k}: {fmt(v)}" for k, v in value.items() if v is not None) or "none"
    return str(value)


def html_value(value: Any) -> Markup:
    """Like :func:`fmt`, but an absent value is a visible "not recorded" marker."""
    if value is None or value == "":
        return Markup('<span class="nr">not recorded</span>')
    if isinstance(value, str) and _HEX_DIGEST.fullmatch(value):
        return Markup('<code class="hash">') + escape(value) + Markup("</code>")
    return escape(fmt(value))


def md_value(value: Any) -> str:
    """A Markdown table cell: pipes escaped, one line, absent values in italics, and no raw HTML.

    Markdown passes HTML through to whatever renders it, so ``<`` and ``>`` in a
    recorded value (a reviewer's reason, say) are backslash-escaped: a ``<script>``
    typed into ``--reason`` is shown, never run, and the file still reads as
    text (``\\<PERSON\\>``, not ``&lt;PERSON&gt;``). A backslash already in the value
    is escaped first, and ``&`` only where it would start an entity.
    """
    if value is None or value == "":
        return "*not recorded*"
    text = fmt(value).replace("\\", "\\\\")
    text = _ENTITY_START.sub(r"\\&", text).replace("<", "\\<").replace(">", "\\>")
    return text.replace("|", "\\|").replace("\n", " ")


#: An ``&`` that a Markdown renderer would read as the start of a character reference (``&lt;``, ``&#60;``).
_ENTITY_START = re.compile(r"&(?=#?[0-9A-Za-z]+;)")


def breakable(value: Any) -> Markup:
    """A path or identifier that may wrap after ``/``, ``_`` and ``.`` in a narrow table cell."""
    text = str(escape("" if value is None else str(value)))
    return Markup(text.replace("/", "/<wbr>").replace("_", "_<wbr>").replace(".", ".<wbr>"))


def when(value: Any) -> str:
    """An ISO-8601 timestamp as ``2026-11-21 11:15:42 UTC`` (seconds, UTC); other values unchanged."""
    if not isinstance(value, str):
        return fmt(value)
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S") + (" UTC" if moment.tzinfo is not None else "")


def libraries(training: dict[str, Any]) -> str | None:
    """The training libraries and their recorded versions, one line for both renderings
    (``torch 2.5.1, transformers 4.57.1, trl 0.24.0, peft 0.17.1``); None when none was recorded."""
    recorded = training.get("libraries") or {}
    return ", ".join(f"{name} {version}" for name, version in recorded.items()) or None


def decided(record: dict[str, Any]) -> str | None:
    """When a gate or evaluation decision was decided: the signed trail event that published it
    (``2026-11-21 11:15:42 UTC, audit event #7``), and where that event records it, at which ref and commit
    its policy (and any other decisive file it bound: the waivers, the safety judge, the sets' sources file) was
    reviewed (``HEAD`` is the checkout's own commit: nobody but its committer reviewed it);
    None (shown "not recorded") when no signed event did."""
    if not record.get("decided_at"):
        return None
    event = record.get("decided_event")
    shown = when(record["decided_at"]) + (f", audit event #{event}" if event is not None else "")
    review = record.get("decided_review")
    if review:
        ref, commit = review["ref"], short(review["commit"], 12)
        others = [str(Path(f)) for f in review.get("others") or []]
        what = "policy" if not others else ", ".join(["policy", *others[:-1]]) + f" and {others[-1]}"
        if not ref:  # published before decisions recorded the ref
            shown += f", {what} reviewed at commit {commit} (ref not recorded)"
        else:
            own = ": the checkout's own commit, no protected branch" if ref == "HEAD" else ""
            signed = f", signed by {review['signed_by']}" if review.get("signed_by") else ""
            shown += f", {what} reviewed at {ref} ({commit}{own}{signed})"
    return shown


def short(value: Any, n: int = 12) -> str:
    text = "" if value is None else str(value)
    return text[:n] + "…" if len(text) > n else text


class _TemplateCache(FileSystemBytecodeCache):
    """Jinja's per-user bytecode cache (``$TMPDIR/_jinja2-cache-<uid>``, mode 0700, owner checked by Jinja).

    Compiling the report's templates costs ~0.2 s CPU per ``govern report``; the
    cache is keyed by each template's source checksum, so an edited template
    is compiled again. A cache that cannot be read or written only costs that
    compile: it never fails a report.
    """

    def load_bytecode(self, bucket) -> None:  # type: ignore[no-untyped-def]
        try:
            super().load_bytecode(bucket)
        except (OSError, ValueError, EOFError):
            bucket.reset()

    def dump_bytecode(self, bucket) -> None:  # type: ignore[no-untyped-def]
        try:
            super().dump_bytecode(bucket)
        except OSError:
            pass


def _template_cache() -> FileSystemBytecodeCache | None:
    try:
        return _TemplateCache()
    except (OSError, RuntimeError):  # no private temp folder to be had
        return None


@functools.cache
def _environment() -> Environment:
    env = Environment(
        bytecode_cache=_template_cache(),
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False, default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        fmt=fmt,
        v=html_value,
        md=md_value,
        short=short,
        wbr=breakable,
        when=when,
        libraries=libraries,
        decided=decided,
        tojson_pretty=lambda v: json.dumps(v, indent=2),
    )
    return env


def figures_for(facts: ReportFacts) -> dict[str, str]:
    """The report's pictures as SVG markup, keyed by file stem; absent data gives no figure."""
    figures = {"lineage": lineage_svg(facts)}
    curves = training_curves_svg(facts.training.get("curves") or {})
    if curves:
        figures["training_curves"] = curves
    thresholds = eval_thresholds_svg(facts.evaluation.get("results") or [])
    if thresholds:
        figures["eval_thresholds"] = thresholds
    trend = trend_svg((facts.monitoring or {}).get("checks") or [])
    if trend:
        figures["monitoring_trend"] = trend
    return figures


def model_card_metadata(facts: ReportFacts, verdict: Verdict) -> dict[str, Any]:
    """The YAML front matter of the model card (Hugging Face model-card metadata keys)."""
    identity, evaluation = facts.identity, facts.evaluation
    datasets = facts.data.get("datasets") or []
    metrics = []
    for row in evaluation.get("results") or []:
        if not isinstance(row.get("observed"), int | float):
            continue
        # A rule that did not apply (no production version to regress against) judged nothing: its metric is
        # reported under the metric's own name, never under the rule's as if the rule had passed on it
        judged = row.get("status") not in ("not_applicable", "missing")
        name = row["rule_id"] if judged else row["metric"]
        metrics.append({"type": row["metric"], "name": name, "value": float(row["observed"])})
    for key, value in (evaluation.get("other_metrics") or {}).items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            metrics.append({"type": key, "name": key, "value": float(value)})
    eval_sets = evaluation.get("datasets") or []
    meta: dict[str, Any] = {
        "license": identity.get("base_license") or "other",
        "base_model": identity.get("base_model"),
        "library_name": "transformers",
        "pipeline_tag": "text-generation",
        "tags": [t for t in ("trl", identity.get("method"), "governed", f"risk-tier-{identity.get('risk_tier')}") if t],
        "datasets": [d["path"] for d in datasets],
        "dataset_hashes": {d["path"]: {"sha256": d.get("sha256"), "md5": d.get("md5")} for d in datasets},
        "governance": {
            "registered_model": identity.get("name"),
            "version": identity.get("version"),
            "model_sha256": identity.get("model_sha256"),
            "approval_status": identity.get("approval_status"),
            "promotable": verdict.promotable,
            "training_run_id": facts.training.get("run_id"),
            "git_commit": facts.training.get("git_commit"),
            "lock_sha256": facts.training.get("lock_sha256"),
            "audit_chain_head": (facts.integrity.get("chain") or {}).get("head"),
        },
    }
    if metrics:
        meta["model-index"] = [
            {
                "name": identity.get("name"),
                "results": [
                    {
                        "task": {"type": "text-generation", "name": "Text Generation"},
                        "dataset": {
                            "type": eval_sets[0]["path"] if eval_sets else "held-out",
                            "name": "held-out evaluation set",
                            "split": "eval",
                            **({"revision": eval_sets[0]["sha256"]} if eval_sets else {}),
                        },
                        "metrics": metrics,
                    }
                ],
            }
        ]
    return meta


def render_report(facts: ReportFacts, verdict: Verdict, out_dir: str | Path) -> ReportFiles:
    """Write ``report.html``, ``report.md``, ``README.md`` (model card), ``facts.json``, ``figures/``
    and ``model_documentation.json``."""
    out = Path(out_dir)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    env = _environment()
    figures = figures_for(facts)
    figure_paths = {}
    for stem, svg in figures.items():
        path = out / "figures" / f"{stem}.svg"
        path.write_text(svg + "\n", encoding="utf-8")
        figure_paths[stem] = path
    context = {
        "f": facts,
        "verdict": verdict,
        # Packaged section titles (no markup in them): as written, so "Provider's" reads the same in both files
        "sections": {key: Markup(title) for key, title in SECTIONS.items()},
        "numbers": SECTION_NUMBERS,
        "figures": {k: Markup(v) for k, v in figures.items()},
        "figure_files": {k: f"figures/{k}.svg" for k in figures},
        "css": Markup((TEMPLATES / "report.css").read_text(encoding="utf-8")),
        "card_meta": model_card_metadata(facts, verdict),
    }
    html = out / "report.html"
    html.write_text(env.get_template("report.html.j2").render(**context), encoding="utf-8")
    markdown = out / "report.md"
    markdown.write_text(env.get_template("report.md.j2").render(**context), encoding="utf-8")
    card = out / "README.md"
    front = yaml.safe_dump(context["card_meta"], sort_keys=False, allow_unicode=True, width=1000)
    card.write_text(
        "---\n" + front + "---\n" + env.get_template("model_card.md.j2").render(**context), encoding="utf-8"
    )
    facts_path = out / "facts.json"
    facts_path.write_text(
        json.dumps({"facts": facts.to_json(), "verdict": verdict.to_json()}, indent=2, sort_keys=True, default=str)
        + "\n",
        encoding="utf-8",
    )
    # The provider's Model Documentation Form, machine-readable (the same as the report's section)
    documentation = out / "model_documentation.json"
    documentation.write_text(json.dumps(facts.documentation, indent=2, default=str) + "\n", encoding="utf-8")
    # Every parent version's form, where this form's general_information.parent_forms links it by hash
    for relative, form in (facts.chain.get("forms") or {}).items():
        (out / relative).parent.mkdir(parents=True, exist_ok=True)
        (out / relative).write_text(json.dumps(form, indent=2, default=str) + "\n", encoding="utf-8")
    return ReportFiles(out, html, markdown, card, facts_path, figure_paths, documentation)
