"""Declarative policy files: parsing with pydantic, errors that name file and key.

``policies/*.yaml`` hold data, not code. Each file has a ``version``; each rule
an ``id``, a ``severity`` (deny/warn), its threshold and a one-line
``rationale``. Schemas use ``extra="forbid"`` and have no defaults for
thresholds, so a typo or a missing threshold fails loudly here instead of
defaulting in code. Domain schemas live beside this module (``pii``, ``data``,
``eval``, ``approvals``, ``objectives``); they share :class:`Rule`.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError

from governance.errors import ConfigError

if TYPE_CHECKING:
    from governance.policy.review import Review

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """Base for every policy and params schema: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Rule(Strict):
    """Fields every policy rule carries."""

    id: str
    severity: Literal["deny", "warn"]
    rationale: str


class PolicyFile(Strict):
    """Fields every policy file carries, and the SHA-256 of the bytes it was parsed from."""

    version: str
    _sha256: str | None = PrivateAttr(default=None)

    @property
    def sha256(self) -> str | None:
        """The SHA-256 of the bytes :func:`load_policy_file` (or :func:`load_reviewed_policy`) parsed: what a gate
        judged under, never the file hashed again later; None for a policy built in code."""
        return self._sha256


class Yaml12Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """PyYAML's safe loader with YAML 1.2 core-schema scalars, as DVC reads and writes them.

    libyaml's parser where PyYAML was built with it (scalars are still resolved by the
    rules below): params.yaml parses in ~15 ms instead of ~100 ms, and every stage reads it.

    ``dvc exp run -S`` rewrites params.yaml with ruamel (YAML 1.2) and drops the
    quotes of ``save_strategy: "no"``; YAML 1.1 (PyYAML's default) would then read
    ``no`` as ``False``. Here only ``true``/``false`` are booleans, and ``1e-3``
    is a float (YAML 1.1 wants ``1.0e-3``), so a file means the same to DVC and
    to us before and after the round trip.
    """


_BOOL, _INT, _FLOAT = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag not in (_BOOL, _INT, _FLOAT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Yaml12Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
Yaml12Loader.add_implicit_resolver(
    _INT, re.compile(r"^(?:[-+]?(?:0|[1-9][0-9]*)|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)
Yaml12Loader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def load_yaml(path: str | Path) -> object:
    """Parse a YAML file (YAML 1.2 scalars, as DVC reads it); errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    return parse_yaml(path.read_bytes(), path)


def parse_yaml(data: bytes, path: str | Path) -> object:
    """Parse YAML bytes already read (and hashed) from ``path``; errors name the file and line."""
    try:
        return yaml.load(data.decode("utf-8"), Loader=Yaml12Loader)  # noqa: S506 - a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{where}: invalid YAML ({exc.problem})") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: invalid YAML ({exc.__class__.__name__})") from None


def validate_model(data: object, model: type[M], source: str) -> M:
    """Validate parsed data against a schema; the error names ``source`` and the key path."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None


def format_validation_error(exc: ValidationError, source: str) -> str:
    """One line per problem, ``source: key.path: message``; typos first, with the key they probably meant."""
    import difflib

    errors = exc.errors()
    missing = {tuple(e["loc"]) for e in errors if e["type"] == "missing"}
    parts, explained = [], set()
    for error in errors:
        if error["type"] != "extra_forbidden":
            continue
        loc = tuple(error["loc"])
        siblings = [m[-1] for m in missing if m[:-1] == loc[:-1] and isinstance(m[-1], str)]
        guess = difflib.get_close_matches(str(loc[-1]), siblings, n=1)
        hint = f"unknown key (did you mean {guess[0]}?)" if guess else "unknown key (typo?)"
        if guess:
            explained.add(loc[:-1] + (guess[0],))
        parts.append(f"{source}: {'.'.join(str(p) for p in loc)}: {hint}")
    for error in errors:
        if error["type"] == "extra_forbidden" or tuple(error["loc"]) in explained:
            continue
        msg = "required key is missing" if error["type"] == "missing" else error["msg"]
        parts.append(f"{source}: {'.'.join(str(p) for p in error['loc']) or '(top level)'}: {msg}")
    more = len(parts) - 5
    return "; ".join(parts[:5]) + (f"; and {more} more" if more > 0 else "")


def load_policy_file(path: str | Path, model: type[M]) -> M:
    """Load and validate a policy file against its schema, from one read of its bytes (their hash: ``.sha256``)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    data = path.read_bytes()
    return _with_sha256(validate_model(parse_yaml(data, path), model, str(path)), data)


def load_stated_policy(path: str | Path, model: type[M]) -> tuple[M, Review]:
    """Load a policy a reader *states* (a report's provider, limitations, high-risk uses), never one that decides.

    Read once and checked as :func:`load_reviewed_policy` does, but not refused: with an uncommitted change the
    reviewed version's bytes are parsed instead (:func:`~governance.policy.review.reviewed_version`), so an edit
    nobody reviewed cannot change what a report says; where there is no reviewed version (not a git checkout,
    not committed, outside the project) the working copy is parsed. Either way the returned
    :class:`~governance.policy.review.Review` says which, and the caller shows it: ``policy.sha256`` is the hash
    of the bytes parsed, ``review.sha256`` the working copy's.
    """
    from governance.policy.review import read_reviewed, reviewed_version

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    review = read_reviewed(path)
    data = reviewed_version(review) or review.data
    return _with_sha256(validate_model(parse_yaml(data, path), model, str(path)), data), review


def _with_sha256(policy: M, data: bytes) -> M:
    if isinstance(policy, PolicyFile):
        policy._sha256 = hashlib.sha256(data).hexdigest()
    return policy


def load_reviewed_policy(path: str | Path, model: type[M], what: str = "policy") -> M:
    """Load a policy file that decides, only as the reviewed version: the bytes checked are the bytes parsed.

    Refuses with one line naming the file when it is not the version committed
    at the reviewed ref (:func:`governance.policy.review.read_reviewed`).
    """
    return read_reviewed_policy(path, model, what)[0]


def read_reviewed_policy(path: str | Path, model: type[M], what: str = "policy") -> tuple[M, Review]:
    """:func:`load_reviewed_policy` with the :class:`~governance.policy.review.Review` it passed: the reviewed ref and
    commit, for a caller that must look at the reviewed history itself (where a code-review approval was added)."""
    from governance.policy.review import require_reviewed

    path = Path(path)
    review = require_reviewed(path, what)
    return _with_sha256(validate_model(parse_yaml(review.data, path), model, str(path)), review.data), review
