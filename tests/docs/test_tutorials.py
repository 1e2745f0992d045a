"""The tutorials run as written: their shell blocks, in order, on a project after one full `dvc repro`.

    python -m pytest -q tests/docs/test_tutorials.py

Every fenced ```` ```bash ```` block of the three tutorials runs, in page order and tutorial order
(each tutorial continues from the one before it), in one copy of the project, with `bash -euo
pipefail` in the project's root; a block that exits non-zero fails the test with its output. A
```` ```text ```` block right after a bash block is what that block shows: each of its lines must
appear in the block's output (spaces collapsed); ``...`` elides the rest of a line (output that
varies from run to run), so only what comes before it is checked.
A block whose fence has a title starting with ``not run`` (```` ```bash title="not run: why" ````)
is illustrative and skipped: it builds the environment, starts a server or needs the network.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from e2e_support import pipeline_env

DOCS = Path(__file__).resolve().parents[2] / "docs"
TUTORIALS = ["platform-engineer.md", "compliance-reviewer.md", "release-owner.md"]
FENCE = re.compile(r"^```(?P<info>[^\n]*)\n(?P<body>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
BLOCK_TIMEOUT_S = 900


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    script: str
    shows: tuple[str, ...]  # lines the next ```text block says the script prints


def tutorial_blocks(page: str) -> list[Block]:
    """The bash blocks of one tutorial that run, each with the output its page shows after it."""
    text = (DOCS / "tutorials" / page).read_text()
    fences = list(FENCE.finditer(text))
    blocks = []
    for i, fence in enumerate(fences):
        lang, _, attrs = fence["info"].strip().partition(" ")
        if lang != "bash" or re.search(r'title="not run', attrs):
            continue
        shows: tuple[str, ...] = ()
        following = fences[i + 1] if i + 1 < len(fences) else None
        if following and following["info"].strip() == "text":  # what the block prints, after a line of prose
            shows = tuple(filter(None, (line.split("...")[0].strip() for line in following["body"].splitlines())))
        blocks.append(Block(page, text.count("\n", 0, fence.start()) + 1, fence["body"], shows))
    return blocks


def _normal(text: str) -> str:
    return re.sub(r"[ \t]+", " ", text)


def test_every_tutorial_has_a_main_path_that_runs():
    for page in TUTORIALS:
        assert len(tutorial_blocks(page)) >= 3, f"docs/tutorials/{page}: fewer than 3 bash blocks that run"


def test_not_run_blocks_are_skipped_and_shown_output_is_read():
    blocks = tutorial_blocks("platform-engineer.md")
    assert all("make repro" not in b.script for b in blocks)  # title="not run: ..."
    assert blocks[0].script.strip() == "dvc repro"
    assert blocks[0].shows == ("Data and pipelines are up to date.",)


@pytest.mark.slow
def test_tutorials_run_as_written(repro_snapshot):
    workdir = repro_snapshot  # the state the full run left, shared with tests/e2e/ (tests/conftest.py)
    # `govern` imports the copy's governance/, as the stages do (they run in the copy), not the checkout's
    env = {**pipeline_env(workdir), "PYTHONPATH": str(workdir)}
    started = time.perf_counter()
    for page in TUTORIALS:
        for block in tutorial_blocks(page):
            result = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", block.script],
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=BLOCK_TIMEOUT_S,
            )
            where = f"docs/tutorials/{block.page}:{block.line}"
            output = result.stdout + result.stderr
            assert result.returncode == 0, f"{where}: exit {result.returncode}\n{block.script}\n{output[-4000:]}"
            for line in block.shows:
                shown = _normal(line.strip()) in _normal(output)
                assert shown, f"{where}: the page shows {line!r}; got:\n{output[-4000:]}"
    print(f"\ntutorials: {time.perf_counter() - started:.1f}s")  # noqa: T201 - timing shown with -s
