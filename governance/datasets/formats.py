"""Published dataset shapes, detected or named, converted to the four shapes the stages train on.

Each :class:`Format` belongs to one *kind* — the canonical shape a prepare stage writes:

==========  ======================================================  ==============================
kind        canonical record                                        formats read
==========  ======================================================  ==============================
sft         ``messages``                                            messages (TRL conversational,
                                                                    OpenAI fine-tuning), openai_chat
                                                                    (ChatGPT export), sharegpt,
                                                                    alpaca, prompt_completion
preference  ``prompt``, ``chosen``, ``rejected``                    preference (explicit or
                                                                    UltraFeedback-style implicit),
                                                                    preference_implicit, hh_rlhf
kto         ``prompt``, ``completion``, ``label``                   kto
prompt      ``prompt`` (+ ``answer``)                               prompt, gsm8k
==========  ======================================================  ==============================

Conversion is pure (values in, values out) and strict: a record that does not
fit its format raises :class:`RecordError` (a :class:`DataError`) naming
``file:line``, the field and a reason; a record is never dropped here. Whether
such a record stops the stage or is quarantined is the data policy's
``malformed`` rule, applied by :mod:`governance.datasets.prepare`; what each
format treats as malformed rather than repairable is :data:`MALFORMED`. Message
contents are carried as given; stripping whitespace is a separate, counted
curation step.

Trust boundary: record values are untrusted text. Errors quote none of them
except short role-like strings; a :class:`RecordError`'s ``reason`` quotes none
at all, so it may be counted and shown anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from governance.errors import ConfigError, DataError

ROLES = ("system", "user", "assistant")
KINDS = ("sft", "preference", "kto", "prompt")

Messages = list[dict[str, str]]


class RecordError(DataError):
    """One record does not fit its format: where it is (``file:line``), which field, and why.

    ``reason`` is the explanation with every value it quotes replaced by ``…``:
    records failing the same way share it (the quarantine counts per reason), and
    it carries no record text. The message is the one-line ``file:line: field F: …``.
    """

    def __init__(self, where: str, field: str, reason: str, *values: object) -> None:
        self.where = where
        self.field = field
        self.reason = reason.format(*("…" for _ in values))
        super().__init__(f"{where}: field {field}: {reason.format(*values)}")


@dataclass(frozen=True)
class Format:
    """A published dataset shape: which fields identify it and how it becomes its kind's record."""

    name: str
    kind: str
    description: str
    matches: Callable[[Mapping[str, Any]], bool]
    convert: Callable[[Mapping[str, Any], str, str], dict[str, Any]]


# --- messages -----------------------------------------------------------------------------------


def _short(value: Any) -> str:
    # Echo short role-like strings only: a long value could be user text (PII never goes in errors)
    return repr(value) if isinstance(value, str) and len(value) <= 24 else type(value).__name__


def _content(value: Any, where: str, field: str) -> str:
    """A message content: a string, or OpenAI's list of ``{"type": "text", "text"}`` parts."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(p, dict) for p in value):
        texts = []
        for index, part in enumerate(value):
            if part.get("type") != "text" or not isinstance(part.get("text"), str):
                shown = _short(part.get("type"))
                raise RecordError(where, f"{field}[{index}]", "only text parts are supported, got type {}", shown)
            texts.append(part["text"])
        return "".join(texts)
    raise RecordError(where, field, "expected a string, got {}", type(value).__name__)


def as_messages(value: Any, where: str, field: str, default_role: str) -> Messages:
    """A plain string (one ``default_role`` message) or a list of ``{role, content}`` messages."""
    if value is None:
        raise RecordError(where, field, "required field is missing")
    if isinstance(value, str):
        return [{"role": default_role, "content": value}]
    if not isinstance(value, list) or not value:
        raise RecordError(where, field, "expected a string or a non-empty list of messages")
    messages = []
    for index, message in enumerate(value):
        path = f"{field}[{index}]"
        if not isinstance(message, dict):
            raise RecordError(where, path, "expected an object with role and content")
        role = message.get("role")
        if role not in ROLES:
            raise RecordError(where, f"{path}.role", "{} is not one of " + ", ".join(ROLES), _short(role))
        if "weight" in message:
            _check_weight(message["weight"], role, where, f"{path}.weight")
        messages.append({"role": role, "content": _content(message.get("content"), where, f"{path}.content")})
    return messages


def _check_weight(weight: Any, role: str, where: str, path: str) -> None:
    """OpenAI's fine-tuning ``weight`` (0 = do not train on this assistant message) cannot be dropped silently.

    TRL trains on every assistant message of a conversation, so weight 1 is what
    training does anyway; weight 0 would be ignored and the message trained on.
    """
    number = isinstance(weight, int | float) and not isinstance(weight, bool)
    if number and weight == 1 and role == "assistant":
        return
    if not number or weight != 0 or role != "assistant":
        shown = repr(weight) if number else _short(weight)
        raise RecordError(where, path, "{} — OpenAI's weight is 0 or 1 on an assistant message", shown)
    raise RecordError(
        where,
        path,
        "0 (OpenAI's 'do not train on this message') cannot be honoured: TRL trains on every assistant message; "
        "remove the message (and the turns after it) or set weight 1",
    )


def _required(data: Mapping[str, Any], key: str, where: str, fmt: str) -> Any:
    if data.get(key) is None:
        raise RecordError(where, key, f"required field is missing (format {fmt})")
    return data[key]


def _text(data: Mapping[str, Any], key: str, where: str, fmt: str, *, optional: bool = False) -> str:
    value = data.get(key) if optional else _required(data, key, where, fmt)
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise RecordError(where, key, "expected a string, got {} (format " + fmt + ")", type(value).__name__)
    return value


# --- sft ----------------------------------------------------------------------------------------


def _messages(data, where, fmt):
    value = _required(data, "messages", where, fmt)
    if not isinstance(value, list) or not value:
        raise RecordError(where, "messages", "expected a non-empty list of messages")
    return {"messages": as_messages(value, where, "messages", "user")}


def _prompt_completion(data, where, fmt):
    prompt = as_messages(_required(data, "prompt", where, fmt), where, "prompt", "user")
    completion = as_messages(_required(data, "completion", where, fmt), where, "completion", "assistant")
    return {"messages": prompt + completion}


def _alpaca(data, where, fmt):
    instruction = _text(data, "instruction", where, fmt)
    extra = _text(data, "input", where, fmt, optional=True)
    output = _text(data, "output", where, fmt)
    user = f"{instruction}\n\n{extra}" if extra.strip() else instruction
    messages = [{"role": "user", "content": user}, {"role": "assistant", "content": output}]
    if isinstance(data.get("system"), str) and data["system"].strip():
        messages.insert(0, {"role": "system", "content": data["system"]})
    return {"messages": messages}


SHAREGPT_ROLES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bard": "assistant",
    "bing": "assistant",
    "model": "assistant",
}


def _sharegpt(data, where, fmt):
    turns = _required(data, "conversations", where, fmt)
    if not isinstance(turns, list) or not turns:
        raise RecordError(where, "conversations", "expected a non-empty list of turns")
    messages = []
    if isinstance(data.get("system"), str) and data["system"].strip():
        messages.append({"role": "system", "content": data["system"]})
    for index, turn in enumerate(turns):
        path = f"conversations[{index}]"
        if not isinstance(turn, dict):
            raise RecordError(where, path, "expected an object with from and value")
        speaker = turn.get("from")
        role = SHAREGPT_ROLES.get(speaker.lower()) if isinstance(speaker, str) else None
        if role is None:
            raise RecordError(where, f"{path}.from", "{} is not one of " + ", ".join(SHAREGPT_ROLES), _short(speaker))
        messages.append({"role": role, "content": _content(turn.get("value"), where, f"{path}.value")})
    return {"messages": messages}


def _openai_chat(data, where, fmt):
    """A ChatGPT data export conversation: the path from ``current_node`` back to the root."""
    mapping = _required(data, "mapping", where, fmt)
    if not isinstance(mapping, dict) or not mapping:
        raise RecordError(where, "mapping", "expected an object of message nodes")
    node_id = data.get("current_node")
    if node_id is None:  # the last leaf of the tree
        node_id = next((k for k, v in reversed(mapping.items()) if isinstance(v, dict) and not v.get("children")), None)
    chain, seen = [], set()
    while node_id is not None:
        if node_id in seen or node_id not in mapping or not isinstance(mapping[node_id], dict):
            raise RecordError(where, f"mapping.{_short(node_id)}", "broken parent chain")
        seen.add(node_id)
        chain.append((node_id, mapping[node_id]))
        node_id = mapping[node_id].get("parent")
    messages = []
    for node_id, node in reversed(chain):
        message = node.get("message")
        if not message:
            continue
        path = f"mapping.{node_id}.message"
        role = (message.get("author") or {}).get("role")
        content = message.get("content") or {}
        if role == "tool" or content.get("content_type") not in ("text", None):
            continue  # tool calls, images, browsing: not conversation text
        if role not in ROLES:
            raise RecordError(where, f"{path}.author.role", "{} is not one of " + ", ".join(ROLES), _short(role))
        parts = content.get("parts") or []
        if not all(isinstance(p, str) for p in parts):
            raise RecordError(where, f"{path}.content.parts", "expected strings")
        text = "".join(parts)
        if text.strip():  # the export's hidden empty system root
            messages.append({"role": role, "content": text})
    if not messages:
        raise RecordError(where, "mapping", "no text messages on the path to current_node")
    return {"messages": messages}


# --- preference ---------------------------------------------------------------------------------


def _split_implicit(chosen: Messages, rejected: Messages, where: str) -> tuple[Messages, Messages, Messages]:
    """TRL's implicit prompt: the turns both conversations share, up to the last user turn."""
    shared = 0
    while shared < min(len(chosen), len(rejected)) - 1 and chosen[shared] == rejected[shared]:
        shared += 1
    while shared > 0 and chosen[shared - 1]["role"] != "user":
        shared -= 1
    if shared == 0:
        raise RecordError(where, "prompt", "required (or chosen/rejected conversations sharing a user turn)")
    return chosen[:shared], chosen[shared:], rejected[shared:]


def _has_context(messages: Messages) -> bool:
    return any(m["role"] != "assistant" for m in messages)


def _preference(data, where, fmt):
    prompt = as_messages(_required(data, "prompt", where, fmt), where, "prompt", "user")
    chosen = as_messages(_required(data, "chosen", where, fmt), where, "chosen", "assistant")
    rejected = as_messages(_required(data, "rejected", where, fmt), where, "rejected", "assistant")
    if _has_context(chosen) and _has_context(rejected):
        # UltraFeedback-binarized style: the prompt is repeated inside both conversations
        prompt, chosen, rejected = _split_implicit(chosen, rejected, where)
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


def _preference_implicit(data, where, fmt):
    chosen = as_messages(_required(data, "chosen", where, fmt), where, "chosen", "assistant")
    rejected = as_messages(_required(data, "rejected", where, fmt), where, "rejected", "assistant")
    prompt, chosen, rejected = _split_implicit(chosen, rejected, where)
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


HH_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant):[ \t]?")


def parse_hh_transcript(text: str, where: str, field: str) -> Messages:
    """An Anthropic HH-RLHF transcript (``\\n\\nHuman: …\\n\\nAssistant: …``) as messages."""
    marks = list(HH_TURN.finditer(text))
    if not marks or text[: marks[0].start()].strip():
        raise RecordError(where, field, 'not an HH-RLHF transcript (expected "\\n\\nHuman:" turns)')
    messages = []
    for mark, following in zip(marks, [*marks[1:], None], strict=True):
        end = following.start() if following else len(text)
        role = "user" if mark.group(1) == "Human" else "assistant"
        messages.append({"role": role, "content": text[mark.end() : end]})
    return messages


#: A turn marker inside a turn: "Human:"/"Assistant:" after a space or a single line break, not a blank line
HH_INLINE_TURN = re.compile(r"(?:^|\s)(Human|Assistant):(?=\s|$)")


def _refuse_inline_turns(turns: Messages, where: str, field: str) -> None:
    """A turn holding another turn's marker inline (``…drag kings.  Human: …``) is malformed, not repaired.

    The published transcripts separate turns by a blank line; a marker without
    one may be a lost turn boundary or may be text, and nothing in the record
    says which: splitting there could invent a turn, keeping it would train a
    reply that speaks for the human.
    """
    for index, turn in enumerate(turns, start=1):
        found = HH_INLINE_TURN.search(turn["content"])
        if found:
            raise RecordError(
                where,
                f"{field} (turn {index})",
                f'an inline "{found.group(1)}:" turn (not after a blank line) makes its turn boundaries ambiguous',
            )


def _hh_rlhf(data, where, fmt):
    chosen = parse_hh_transcript(_text(data, "chosen", where, fmt), where, "chosen")
    rejected = parse_hh_transcript(_text(data, "rejected", where, fmt), where, "rejected")
    _refuse_inline_turns(chosen, where, "chosen")
    _refuse_inline_turns(rejected, where, "rejected")
    # The last assistant turn is the compared response; everything before it is the prompt
    for field, turns in (("chosen", chosen), ("rejected", rejected)):
        if turns[-1]["role"] != "assistant" or len(turns) < 2:
            raise RecordError(where, field, "transcript does not end with an Assistant turn")
    if chosen[:-1] != rejected[:-1]:
        raise RecordError(where, "rejected", "transcript does not share chosen's turns before the last reply")
    return {"prompt": chosen[:-1], "chosen": chosen[-1:], "rejected": rejected[-1:]}


# --- kto ----------------------------------------------------------------------------------------


def parse_label(value: Any, where: str) -> bool:
    """A boolean label; CSV's ``true``/``false`` strings are accepted, anything else is a DataError."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    shown = "missing" if value is None else f"a {type(value).__name__}"
    raise RecordError(where, "label", "expected a boolean (true = desirable), got {}", shown)


def _kto(data, where, fmt):
    return {
        "prompt": as_messages(data.get("prompt"), where, "prompt", "user"),
        "completion": as_messages(data.get("completion"), where, "completion", "assistant"),
        "label": parse_label(data.get("label"), where),
    }


# --- prompt -------------------------------------------------------------------------------------


def _answer(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _prompt(data, where, fmt):
    value = data.get("prompt")
    if not isinstance(value, str | list) or not value:
        raise RecordError(where, "prompt", "expected a string or a non-empty list of messages")
    row: dict[str, Any] = {"prompt": as_messages(value, where, "prompt", "user")}
    if data.get("answer") is not None:
        row["answer"] = _answer(data["answer"])
    return row


GSM8K_ANSWER = re.compile(r"####\s*(-?[\d,]*\.?\d+)\s*$")


def _gsm8k(data, where, fmt):
    question = _text(data, "question", where, fmt)
    answer = _text(data, "answer", where, fmt)
    final = GSM8K_ANSWER.search(answer)
    if final is None:
        raise RecordError(where, "answer", "expected a GSM8K answer ending in '#### <number>'")
    return {"prompt": [{"role": "user", "content": question}], "answer": final.group(1).replace(",", "")}


# --- the registry -------------------------------------------------------------------------------


def _is_list_of_messages(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(m, dict) and "role" in m for m in value)


def _is_hh(value: Any) -> bool:
    return isinstance(value, str) and bool(HH_TURN.match(value.lstrip(" ")) or "\n\nHuman:" in value)


FORMATS: tuple[Format, ...] = (
    Format("messages", "sft", "TRL conversational / OpenAI fine-tuning: messages of role/content",
           lambda d: "messages" in d, _messages),
    Format("openai_chat", "sft", "ChatGPT data export: mapping of message nodes, current_node",
           lambda d: "mapping" in d, _openai_chat),
    Format("sharegpt", "sft", "ShareGPT: conversations of from/value",
           lambda d: "conversations" in d, _sharegpt),
    Format("alpaca", "sft", "Alpaca: instruction, optional input, output",
           lambda d: "instruction" in d and "output" in d, _alpaca),
    Format("prompt_completion", "sft", "TRL prompt-completion: prompt, completion",
           lambda d: "prompt" in d and "completion" in d, _prompt_completion),
    Format("hh_rlhf", "preference", "Anthropic HH-RLHF: chosen/rejected transcripts of Human:/Assistant: turns",
           lambda d: "prompt" not in d and _is_hh(d.get("chosen")), _hh_rlhf),
    Format("preference", "preference", "TRL preference with a prompt (explicit, or repeated inside UltraFeedback-"
           "style conversations)", lambda d: "prompt" in d and "chosen" in d and "rejected" in d, _preference),
    Format("preference_implicit", "preference", "TRL preference, implicit prompt: chosen/rejected conversations",
           lambda d: "chosen" in d and "rejected" in d and _is_list_of_messages(d.get("chosen")),
           _preference_implicit),
    Format("kto", "kto", "TRL unpaired preference: prompt, completion, label",
           lambda d: "completion" in d and "label" in d, _kto),
    Format("gsm8k", "prompt", "GSM8K: question, answer ending in '#### <number>'",
           lambda d: "question" in d and "answer" in d, _gsm8k),
    Format("prompt", "prompt", "TRL prompt-only: prompt (string or messages), optional answer",
           lambda d: "prompt" in d, _prompt),
)  # fmt: skip

BY_NAME = {f.name: f for f in FORMATS}

#: What each format treats as malformed (the record is refused or quarantined, never guessed at) and what it
#: repairs (converted as a published variant of the shape). Shown on the dataset card.
MALFORMED: dict[str, dict[str, str]] = {
    "messages": {
        "malformed": "messages missing or empty; a message that is not an object, has a role other than "
        "system/user/assistant, or content that is neither text nor OpenAI text parts; an OpenAI weight other "
        "than 1 on an assistant message (0 cannot be honoured)",
        "repaired": "OpenAI text parts joined into one string; weight 1 dropped (TRL trains on every assistant "
        "message anyway)",
    },
    "openai_chat": {
        "malformed": "mapping missing or empty; a broken parent chain; a role other than system/user/assistant; "
        "parts that are not text; no text on the path to current_node",
        "repaired": "tool, image and browsing nodes and the export's hidden empty system root skipped; no "
        "current_node: the last leaf",
    },
    "sharegpt": {
        "malformed": "conversations missing or empty; a turn that is not an object, from an unknown speaker, or "
        "not text",
        "repaired": "speaker names (human, gpt, chatgpt, bard, bing, model) mapped to user/assistant; a system "
        "field becomes the first message",
    },
    "alpaca": {
        "malformed": "instruction or output missing or not text",
        "repaired": "input appended to the instruction after a blank line; numbers read as text",
    },
    "prompt_completion": {
        "malformed": "prompt or completion missing, empty or not messages",
        "repaired": "plain strings become one user and one assistant message",
    },
    "hh_rlhf": {
        "malformed": "a transcript not made of blank-line-separated Human:/Assistant: turns; a turn carrying "
        "another turn's marker inline ('…drag kings.  Human: …': ambiguous boundaries, never split); a "
        "transcript not ending on an Assistant turn; chosen and rejected differing before their last reply",
        "repaired": "a marker without a space after its colon; whitespace around turns (stripped, counted); the "
        "shared turns become the prompt",
    },
    "preference": {
        "malformed": "prompt, chosen or rejected missing or not messages; conversations repeating the prompt "
        "that share no user turn",
        "repaired": "the prompt repeated inside chosen/rejected (UltraFeedback-binarized) split out; plain "
        "strings become messages",
    },
    "preference_implicit": {
        "malformed": "chosen or rejected missing or not messages; conversations sharing no user turn",
        "repaired": "the shared turns up to the last user turn become the prompt",
    },
    "kto": {
        "malformed": "prompt or completion missing or not messages; a label that is not a boolean",
        "repaired": 'CSV\'s "true"/"false" labels read as booleans',
    },
    "gsm8k": {
        "malformed": "question or answer missing; an answer not ending in '#### <number>'",
        "repaired": "the number after '####' becomes the answer, thousands separators removed",
    },
    "prompt": {
        "malformed": "prompt missing, empty or not messages",
        "repaired": "a numeric answer read as text",
    },
}

#: Malformed in every format: the record, not the file, is broken.
MALFORMED_ANY = "an id that is not a non-empty string or integer; a column named in columns: that the record lacks"

#: Never quarantined, whatever the policy: the file (or the dataset as a whole) is broken, not one record.
FILE_ERRORS = (
    "an unreadable or empty file, a line that is not UTF-8 or JSON or not an object, a duplicate explicit id, "
    "a first record no format fits"
)


def formats_for(kind: str) -> list[Format]:
    """The formats a prepare stage of ``kind`` reads, in detection order."""
    return [f for f in FORMATS if f.kind == kind]


def resolve_format(
    kind: str, name: str, first: Mapping[str, Any] | None, where: str, section: str = "prepare"
) -> tuple[Format, bool]:
    """The format named in params, or the first of ``kind``'s formats the first record fits.

    Returns the format and whether it was detected. An unknown name is a
    :class:`ConfigError` listing the options; a first record no format fits is a
    :class:`DataError` naming its fields (never their values).
    """
    options = formats_for(kind)
    names = ", ".join(f.name for f in options)
    if name != "auto":
        if name not in BY_NAME or BY_NAME[name].kind != kind:
            raise ConfigError(
                f"params.yaml: {section}.format: {name!r} is not a {kind} format (options: auto, {names})"
            )
        return BY_NAME[name], False
    if first is None:
        raise DataError(f"{where}: no records (empty file)")
    for fmt in options:
        if fmt.matches(first):
            return fmt, True
    fields = ", ".join(sorted(map(str, first))[:12]) or "none"
    raise DataError(
        f"{where}: no {kind} format fits the first record's fields ({fields}); "
        f"set format: to one of {names}, or map fields with columns:"
    )
