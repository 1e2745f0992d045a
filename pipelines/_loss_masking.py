"""How SFT keeps the loss on the assistant's answers, chosen from the base model's chat template.

``assistant_only_loss: true`` (params.yaml ``train_sft.trl``) asks TRL for a loss mask from
``{% generation %}`` markers in the chat template. Few published templates carry them, so the
strategy is chosen here, in this order, and recorded in the model's lineage and report:

``template_markers``
    the model's own template has the markers (the built-in tiny model's does);
``trl_training_template``
    TRL knows the template and swaps in its own training variant
    (``trl.chat_template_utils.get_training_chat_template``);
``shipped_training_template``
    a training variant this project ships in ``pipelines/chat_templates/`` (``<family>_training.jinja``
    beside the original ``<family>.jinja``: SmolLM2, Qwen2, plain ChatML, Zephyr, Llama 3.1/3.2), used
    only when it renders exactly the text the model's own template renders, for every training and
    evaluation conversation and a fixed set of probes: the model trains on the format it is served with;
``completion_only``
    each assistant turn becomes a prompt/completion example (the conversation up to the turn, then the
    turn), so TRL's completion-only loss covers the answers; used when the model's template renders each
    prompt (with the generation prompt) as a prefix of the prompt followed by its answer.

When none applies, training is refused with one line before any run starts. With
``assistant_only_loss: false`` the strategy is ``all_tokens``.

Trust boundary: the chat template comes from the base model folder the ``base_model`` stage hashed
(its ``model_sha256`` is in the lineage); the shipped variants are files of this checkout (the git
commit is in the lineage). What is believed about a variant is recomputed here, at training time, by
rendering: never read from a file or flag. Nothing here logs or raises with conversation text:
records are named by file and line.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

from governance.errors import ConfigError

log = logging.getLogger(__name__)

#: The training variants this project ships: ``<family>_training.jinja`` beside the original ``<family>.jinja``
TEMPLATES_DIR = Path(__file__).parent / "chat_templates"

Strategy = Literal[
    "all_tokens", "template_markers", "trl_training_template", "shipped_training_template", "completion_only"
]

#: PII-free conversations every shipped variant must render exactly as the original: a system prompt or
#: none, one turn or several, and whitespace around the content (templates that trim must trim alike).
PROBES: tuple[tuple[dict[str, str], ...], ...] = (
    ({"role": "user", "content": "What is 2 + 2?"}, {"role": "assistant", "content": "4."}),
    (
        {"role": "system", "content": "You answer briefly."},
        {"role": "user", "content": "  Name a colour.\n"},
        {"role": "assistant", "content": "\nBlue.  "},
    ),
    (
        {"role": "user", "content": "Hello."},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me a fact.\n\nA short one."},
        {"role": "assistant", "content": "Water boils at 100 degrees Celsius at sea level."},
    ),
    (
        {"role": "system", "content": "Be kind.\n"},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hi there."},
        {"role": "user", "content": "Bye"},
        {"role": "assistant", "content": "Goodbye."},
    ),
)


class Conversation(NamedTuple):
    """One training conversation and where it came from (``file:line``, for messages that name it)."""

    where: str
    messages: list[dict[str, Any]]


@dataclass(frozen=True)
class LossMasking:
    """The chosen strategy, the template TRL renders training text with, and the one the model is served with."""

    strategy: Strategy
    template: str | None
    template_source: str
    served_template: str | dict[str, str] | None

    def lineage(self) -> dict[str, Any]:
        """What the model's lineage and report record: ``loss_masking: {strategy, template_sha256, ...}``."""
        return {
            "strategy": self.strategy,
            "template_sha256": template_sha256(self.template),
            "template_source": self.template_source,
            "served_template_sha256": template_sha256(_default(self.served_template)),
        }


def template_sha256(template: str | None) -> str | None:
    """SHA-256 of a chat template's text with line endings and surrounding whitespace normalised.

    Normalised so the same release matches whether it came from a ``tokenizer_config.json``, a
    ``chat_template.jinja`` or a GGUF file; a variant is still used only once rendering proved it equal.
    """
    if template is None:
        return None
    return hashlib.sha256(template.replace("\r\n", "\n").strip().encode("utf-8")).hexdigest()


def shipped_variants() -> dict[str, tuple[str, str]]:
    """``{family: (original, training variant)}`` for every pair in ``pipelines/chat_templates/``."""
    out: dict[str, tuple[str, str]] = {}
    for training in sorted(TEMPLATES_DIR.glob("*_training.jinja")):
        family = training.name.removesuffix("_training.jinja")
        original = TEMPLATES_DIR / f"{family}.jinja"
        if original.is_file():
            out[family] = (original.read_text(encoding="utf-8"), training.read_text(encoding="utf-8"))
    return out


def choose_loss_masking(
    tokenizer, conversations: Sequence[Conversation], assistant_only_loss: bool, model: str, section: str = "train_sft"
) -> LossMasking:
    """The loss-masking strategy for this tokenizer and these conversations (see the module docstring).

    Raises :class:`ConfigError` (one line) when ``assistant_only_loss`` is asked for and no strategy applies.
    """
    from trl.chat_template_utils import has_generation_markers

    served = getattr(tokenizer, "chat_template", None)
    template = _default(served)
    if not assistant_only_loss:
        return LossMasking("all_tokens", template, "model chat template", served)
    if not template:
        raise ConfigError(
            f"params.yaml: {section}.trl.assistant_only_loss: true, but {model} has no chat template; "
            "give the model one (tokenizer chat_template) or set assistant_only_loss: false"
        )
    reasons: list[str] = []
    # The model's own markers: TRL masks with them as they are
    if has_generation_markers(template):
        failure = first_render_failure(tokenizer, template, conversations)
        if failure is None:
            return LossMasking("template_markers", template, "model chat template", served)
        reasons.append(f"its {{% generation %}} template {failure}")
    else:
        # TRL's own training variant of a template it knows
        trl_template, trl_source = _trl_training_template(tokenizer)
        if trl_template is not None:
            failure = first_render_failure(tokenizer, trl_template, conversations)
            if failure is None:
                return LossMasking("trl_training_template", trl_template, trl_source, served)
            reasons.append(f"TRL's training variant {failure}")
        else:
            reasons.append("TRL has no training variant of it")
        # A variant this project ships, proven to render as the model's template
        shipped, why = _shipped_training_template(tokenizer, template, conversations)
        if shipped is not None:
            return LossMasking("shipped_training_template", shipped[1], shipped[0], served)
        reasons.append(why)
    # Completion-only loss on prompt/completion examples rendered by the model's own template
    failure = completion_only_failure(tokenizer, template, conversations)
    if failure is None:
        return LossMasking("completion_only", template, "model chat template", served)
    reasons.append(f"completion-only loss does not fit: {failure}")
    raise ConfigError(
        f"params.yaml: {section}.trl.assistant_only_loss: true, but no loss mask fits the chat template of {model} "
        f"(sha256 {template_sha256(template)[:12]}): {'; '.join(reasons)}; set assistant_only_loss: false "
        "(loss on every token) or give the model a template with {% generation %} markers around assistant output"
    )


def prompt_completion_rows(conversations: Sequence[Conversation]) -> list[dict[str, Any]]:
    """One conversational prompt/completion example per assistant turn (the turns before it, then the turn).

    Every answer is trained once, in the context it was given in; earlier answers are context only.
    """
    rows = []
    for conversation in conversations:
        messages = conversation.messages
        for index, message in enumerate(messages):
            if message.get("role") == "assistant" and index > 0:
                rows.append({"prompt": messages[:index], "completion": [message]})
    return rows


@contextlib.contextmanager
def masked_tokenization(masking: LossMasking, config, tokenizer) -> Iterator[None]:
    """While TRL tokenizes the data (the trainer's constructor): the chosen mask; after it, the served template.

    A shipped training variant is the tokenizer's template only inside the block; ``completion_only``
    switches the TRL config from ``assistant_only_loss`` to ``completion_only_loss`` (the run's logged
    arguments show it). The saved model carries the template it is served with either way.
    """
    if masking.strategy == "completion_only":
        config.assistant_only_loss = False
        config.completion_only_loss = True
    if masking.strategy == "shipped_training_template":
        tokenizer.chat_template = masking.template
    try:
        yield
    finally:
        tokenizer.chat_template = masking.served_template


def first_render_failure(tokenizer, template: str, conversations: Sequence[Conversation]) -> str | None:
    """``'fails on FILE:LINE: <template error>'`` for the first conversation the template cannot render, else None."""
    for conversation in conversations:
        rendered = _render(tokenizer, template, conversation.messages)
        if rendered[0] == "error":
            return f"fails on {conversation.where}: {rendered[1]}"
    return None


def renders_alike(tokenizer, original: str, variant: str, conversations: Sequence[Conversation]) -> str | None:
    """None when ``variant`` renders every probe and conversation exactly as ``original``, else where it differs."""
    for number, probe in enumerate(PROBES, start=1):
        messages = list(probe)
        for prompt in (False, True):
            turns = messages[:-1] if prompt else messages
            kwargs = {"add_generation_prompt": prompt}
            if _render(tokenizer, original, turns, **kwargs) != _render(tokenizer, variant, turns, **kwargs):
                return f"probe conversation {number}{' (generation prompt)' if prompt else ''}"
    for conversation in conversations:
        if _render(tokenizer, original, conversation.messages) != _render(tokenizer, variant, conversation.messages):
            return conversation.where
    return None


def completion_only_failure(tokenizer, template: str, conversations: Sequence[Conversation]) -> str | None:
    """Why prompt/completion examples cannot be cut from these conversations with this template, else None.

    Each assistant turn's prompt, rendered with the generation prompt, must be a prefix of the prompt
    followed by the turn: else the model would be trained on a context it is not served with.
    """
    for conversation in conversations:
        messages = conversation.messages
        turns = [i for i, m in enumerate(messages) if m.get("role") == "assistant"]
        if not turns or turns[0] == 0:
            opening = "has no assistant turn" if not turns else "opens with the assistant"
            return f"{conversation.where}: the conversation {opening}"
        for index in turns:
            prompt = _render(tokenizer, template, messages[:index], add_generation_prompt=True)
            whole = _render(tokenizer, template, messages[: index + 1])
            for rendered in (prompt, whole):
                if rendered[0] == "error":
                    return f"the template fails on {conversation.where}: {rendered[1]}"
            if not whole[1].startswith(prompt[1]) or len(whole[1]) == len(prompt[1]):
                return (
                    f"{conversation.where}: the prompt before message {index} is not rendered as a prefix "
                    "of the prompt and its answer"
                )
    return None


def _default(template: str | dict[str, str] | None) -> str | None:
    """A template shipped as named variants loads as a dict; TRL trains with its ``default``."""
    if isinstance(template, dict):
        return template.get("default")
    return template


def _render(tokenizer, template: str, messages: list[dict[str, Any]], **kwargs: Any) -> tuple[str, str]:
    """``("ok", text)`` or ``("error", first line of the template's error)``: two templates agree when both do."""
    from jinja2 import TemplateError

    try:
        text = tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False, **kwargs)
    except (TemplateError, TypeError, ValueError, KeyError, IndexError) as exc:
        return "error", (str(exc).splitlines() or [type(exc).__name__])[0][:200]
    return "ok", text


def _trl_training_template(tokenizer) -> tuple[str | None, str]:
    """TRL's training variant of the tokenizer's template and the file it ships it as, or (None, '')."""
    import trl
    from jinja2 import TemplateError
    from trl.chat_template_utils import get_training_chat_template

    try:
        template = get_training_chat_template(tokenizer)
    except (ValueError, TemplateError, TypeError):
        return None, ""
    if template is None:  # already training-ready by TRL's measure (it has markers): not reached from here
        return None, ""
    source = f"trl {trl.__version__} get_training_chat_template"
    for path in sorted((Path(trl.__file__).parent / "chat_templates").glob("*_training.jinja")):
        if path.read_text(encoding="utf-8") == template:
            source = f"trl {trl.__version__} chat_templates/{path.name}"
            break
    return template, source


def _shipped_training_template(
    tokenizer, template: str, conversations: Sequence[Conversation]
) -> tuple[tuple[str, str] | None, str]:
    """``((source, variant), '')`` for the shipped variant that renders as ``template``, else ``(None, why not)``.

    A known release (normalised hash of the original) is tried first; then every other shipped variant,
    which a template of the same family (a ChatML template saved with other whitespace) may render alike.
    Either way the variant must render every probe and conversation exactly as the model's template.
    """
    from trl.chat_template_utils import is_chat_template_stop_token_trained

    digest = template_sha256(template)
    variants = shipped_variants()
    ordered = sorted(variants.items(), key=lambda item: template_sha256(item[1][0]) != digest)
    known = None
    for family, (original, variant) in ordered:
        release = template_sha256(original) == digest
        source = f"pipelines/chat_templates/{family}_training.jinja"
        differs = renders_alike(tokenizer, template, variant, conversations)
        if differs is None and is_chat_template_stop_token_trained(tokenizer, chat_template=variant):
            log.debug("%s: %s", source, "a known release" if release else "renders as the model's template")
            return (source, variant), ""
        if release:
            known = (
                f"the shipped {family} variant renders differently on {differs}"
                if differs
                else (f"the shipped {family} variant leaves the end-of-turn token out of the mask")
            )
    return None, known or "no shipped training variant renders as it"
