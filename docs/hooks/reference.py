"""Generate the reference pages from the code at build time (an mkdocs hook, see mkdocs.yml).

    mkdocs build --strict        # or: mkdocs serve

Four pages, never committed (they are made fresh on every build, so they cannot drift):

- ``reference/params.md``: each stage's params section, from the stage module's pydantic
  ``*Params`` model (the model ``tests/test_contracts.py`` validates params.yaml against),
  with the shipped values from params.yaml;
- ``reference/policies.md``: every ``policies/*.yaml`` file's schema, from its pydantic model
  (``model_json_schema()``); a policy file without a schema here fails the build;
- ``reference/cli.md``: ``govern`` and every subcommand, from argparse (``format_help()``);
- ``reference/errors.md``: the exit codes and the error hierarchy of ``governance.errors``.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import shlex
import sys
from pathlib import Path

import yaml
from mkdocs.structure.files import File, Files

REPO = Path(__file__).resolve().parents[2]

#: Every policy file and the schema that parses it (as tests/test_contracts.py: POLICY_SCHEMAS).
POLICY_SCHEMAS = {
    "approvals.yaml": "governance.policy.approvals:ApprovalsPolicy",
    "data.yaml": "governance.policy.data:DataPolicy",
    "eval.yaml": "governance.policy.eval:EvalPolicy",
    "monitoring.yaml": "governance.policy.monitoring:MonitoringPolicy",
    "objectives.yaml": "governance.policy.objectives:ObjectivesPolicy",
    "pii.yaml": "governance.policy.pii:PiiPolicy",
    "report.yaml": "governance.report.policy:ReportPolicy",
    "trail_keys.yaml": "governance.policy.trail_keys:TrailKeysPolicy",
    "waivers.yaml": "governance.gates:WaiverFile",
}

GENERATED_NOTE = "_Generated from the code when the site is built (`docs/hooks/reference.py`); do not edit._\n"


def on_files(files: Files, config) -> Files:
    """Add the generated reference pages to the site's files (before the navigation is built)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    pages = {
        "reference/params.md": params_page(),
        "reference/policies.md": policies_page(),
        "reference/cli.md": cli_page(),
        "reference/errors.md": errors_page(),
    }
    for uri, content in pages.items():
        files.append(File.generated(config, uri, content=content))
    return files


# --- params per stage -------------------------------------------------------------------------


def _stage_module(cmd: str) -> str:
    """``python -m pipelines.X ...`` or ``python -m pipelines._launch ... -m pipelines.X``: X."""
    words = shlex.split(cmd)
    return words[len(words) - 1 - words[::-1].index("-m") + 1]


def _params_model(module):
    from pydantic import BaseModel

    own = [
        cls
        for name, cls in inspect.getmembers(module, inspect.isclass)
        if name.endswith("Params") and cls.__module__ == module.__name__ and issubclass(cls, BaseModel)
    ]
    if len(own) != 1:
        raise RuntimeError(f"{module.__name__}: expected exactly one *Params model, found {own}")
    return own[0]


def params_page() -> str:
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    params_text = (REPO / "params.yaml").read_text()
    by_module: dict[str, list[str]] = {}
    for stage, spec in stages.items():
        by_module.setdefault(_stage_module(spec["cmd"]), []).append(stage)
    out = [
        "# Params per stage\n",
        GENERATED_NOTE,
        "Each `dvc.yaml` stage reads the `params.yaml` section of its own name and validates it with the "
        "stage module's pydantic model (unknown keys are errors). A `trl:` block is passed to TRL's config "
        "class unchanged (`SFTConfig(**trl)`, `DPOConfig(**trl)`, ...), so TRL's documentation applies to it; "
        "its keys are checked by TRL, not listed here. Change a value for one experiment with "
        "`dvc exp run -S <stage>.<key>=<value>`.\n",
    ]
    for module_name, stage_names in sorted(by_module.items(), key=lambda kv: kv[1][0]):
        model = _params_model(importlib.import_module(module_name))
        out.append(f"## `{module_name}`\n")
        out.append(f"Stages: {', '.join(f'`{s}`' for s in stage_names)}. Model: `{model.__name__}`.\n")
        out += _schema_tables(model.model_json_schema())
        for stage in stage_names:
            shipped = _section_text(params_text, stage)
            out.append(f'??? example "`{stage}` as shipped in params.yaml"\n')
            out.append("    ```yaml\n" + _indent(shipped) + "\n    ```\n")
    return "\n".join(out)


def _section_text(text: str, section: str) -> str:
    """The lines of one top-level params.yaml section as written, comments (the why of each value) included."""
    lines, inside = [], False
    for line in text.splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            inside = line.split(":", 1)[0] == section
        if inside:
            lines.append(line)
    if not lines:
        raise RuntimeError(f"params.yaml has no section {section!r}")
    return "\n".join(lines).rstrip()


# --- policy schemas ----------------------------------------------------------------------------


def policies_page() -> str:
    shipped = sorted(p.name for p in (REPO / "policies").glob("*.yaml"))
    missing = [name for name in shipped if name not in POLICY_SCHEMAS]
    if missing:
        raise RuntimeError(f"policies/{missing[0]} has no schema in docs/hooks/reference.py POLICY_SCHEMAS")
    out = [
        "# Policy file schemas\n",
        GENERATED_NOTE,
        'Every file under `policies/` is data, parsed by a pydantic model with `extra="forbid"`: a typo '
        "or a missing threshold fails loudly (exit 2, naming the file and field). Each file has a "
        "`version`; each rule an `id`, a `severity` (`deny` / `warn`), its threshold and a one-line "
        "`rationale`. `dvc.yaml` lists the policy files as dependencies, so changing a threshold re-runs "
        "exactly the gates that read it.\n",
    ]
    for name in shipped:
        module, attr = POLICY_SCHEMAS[name].split(":")
        model = getattr(importlib.import_module(module), attr)
        schema = model.model_json_schema()
        out.append(f"## `policies/{name}`\n")
        out.append(f"Model: `{module}.{attr}`.\n")
        out += _schema_tables(schema)
        out.append('??? info "JSON schema (`model_json_schema()`)"\n')
        out.append("    ```json\n" + _indent(json.dumps(schema, indent=2)) + "\n    ```\n")
    return "\n".join(out)


def _schema_tables(schema: dict) -> list[str]:
    """The model's own fields, then each nested model's, as tables."""
    out = []
    if schema.get("description"):
        out.append(_one_paragraph(schema["description"]) + "\n")
    out.append(_field_table(schema))
    for name, sub in sorted(schema.get("$defs", {}).items()):
        if sub.get("type") != "object" or "properties" not in sub:
            continue
        about = f": {_one_paragraph(sub['description'])}" if sub.get("description") else ""
        out.append(f"**`{name}`**{about}\n")
        out.append(_field_table(sub))
    return out


def _field_table(schema: dict) -> str:
    required = set(schema.get("required", []))
    rows = ["| field | type | required / default | description |", "| --- | --- | --- | --- |"]
    for field, spec in schema.get("properties", {}).items():
        default = f"`{json.dumps(spec['default'])}`" if "default" in spec else ""
        default = "required" if field in required else default
        rows.append(
            f"| `{field}` | {_type(spec)} | {_cell(default)} | {_cell(_one_paragraph(spec.get('description', '')))} |"
        )
    if len(rows) == 2:
        rows.append("| (any key) | | | |")
    return "\n".join(rows) + "\n"


def _type(spec: dict) -> str:
    if "$ref" in spec:
        return f"`{spec['$ref'].rsplit('/', 1)[-1]}`"
    if "enum" in spec:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in spec["enum"])
    if "const" in spec:
        return f"`{json.dumps(spec['const'])}`"
    for key in ("anyOf", "oneOf", "allOf"):
        if key in spec:
            return " \\| ".join(_type(s) for s in spec[key])
    kind = spec.get("type", "any")
    if kind == "array":
        return f"list of {_type(spec.get('items', {}))}"
    if kind == "object" and isinstance(spec.get("additionalProperties"), dict):
        return f"map of {_type(spec['additionalProperties'])}"
    ops = (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<"))
    bounds = [f"{op} {spec[k]}" for k, op in ops if k in spec]
    return f"`{kind}`" + (f" ({', '.join(bounds)})" if bounds else "")


# --- the govern CLI ----------------------------------------------------------------------------


def cli_page() -> str:
    from governance.cli import build_parser

    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal; a fixed width keeps the page stable
    try:
        parser = build_parser()
        out = [
            "# `govern` command line\n",
            GENERATED_NOTE,
            "`govern` is the face of the library for reviewers and release owners. It works without a DVC "
            "checkout: it needs the MLflow tracking URI (`MLFLOW_TRACKING_URI`, default the embedded "
            "`sqlite:///mlflow.db`) and the policy files. Exit codes: [errors and exit codes](errors.md).\n",
            "```text\n" + parser.format_help().rstrip() + "\n```\n",
        ]
        out += _subcommands(parser, "govern", level=2)
    finally:
        if columns is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = columns
    return "\n".join(out)


def _subcommands(parser: argparse.ArgumentParser, prog: str, level: int) -> list[str]:
    out = []
    for action in parser._actions:  # argparse keeps subparsers only here
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for name, sub in sorted(action.choices.items()):
            out.append(f"{'#' * level} `{prog} {name}`\n")
            out.append("```text\n" + sub.format_help().rstrip() + "\n```\n")
            out += _subcommands(sub, f"{prog} {name}", min(level + 1, 4))
    return out


# --- exit codes and errors ---------------------------------------------------------------------


def errors_page() -> str:
    import governance.cli  # noqa: F401 - the CLI's modules define their own error subclasses
    import governance.datasets.formats  # noqa: F401
    from governance import errors

    out = [
        "# Exit codes and errors\n",
        GENERATED_NOTE,
        "| exit | meaning | constant |",
        "| --- | --- | --- |",
        f"| {errors.EXIT_OK} | done | `governance.errors.EXIT_OK` |",
        f"| {errors.EXIT_DENIED} | refused by policy or permission | `governance.errors.EXIT_DENIED` |",
        f"| {errors.EXIT_USAGE} | bad input, usage or connection error | `governance.errors.EXIT_USAGE` |",
        "",
        "The same codes everywhere: every `govern` command and every pipeline stage. An error is one line "
        "on stderr, `<stage or govern>: <ErrorClass>: <message>`, naming the file, line and field and never "
        "a raw PII value; no traceback for a user mistake. For example:\n",
        "```text\n"
        "prepare_sft: DataError: data/raw/sft.jsonl:17: invalid JSON (Expecting ',' delimiter at column 40)\n"
        "train_sft: ConfigError: params.yaml: train_sft: trl.learnin_rate: ... (options are SFTConfig's)\n"
        "```\n",
        "Every reader refuses a record that could exhaust the parser (JSON nested over 64 levels, an integer "
        "over Python's digit limit, a line over 8 MiB) with that one line: "
        "`data/raw/sft.jsonl:2: JSON nested 100001 levels deep (max 64); flatten the record`.\n",
        "## The error hierarchy\n",
        "From `governance.errors` (and its subclasses elsewhere in `governance/`), with each class's exit code:\n",
        "| error | exit | module | when |",
        "| --- | --- | --- | --- |",
    ]
    for cls, depth in _walk(errors.GovernanceError):
        name = "&nbsp;&nbsp;" * depth + f"`{cls.__name__}`"
        out.append(f"| {name} | {cls.exit_code} | `{cls.__module__}` | {_cell(_one_paragraph(cls.__doc__ or ''))} |")
    return "\n".join(out) + "\n"


def _walk(cls: type, depth: int = 0):
    yield cls, depth
    for sub in sorted(cls.__subclasses__(), key=lambda c: (c.__module__ != "governance.errors", c.__name__)):
        if sub.__module__.startswith("governance"):
            yield from _walk(sub, depth + 1)


# --- text helpers ------------------------------------------------------------------------------


def _one_paragraph(text: str) -> str:
    return " ".join(text.strip().split("\n\n")[0].split())


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" if line else "" for line in text.splitlines())
