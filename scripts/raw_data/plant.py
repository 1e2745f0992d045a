"""Plant fake PII into a fixed, documented set of records, and find PII-like text.

:data:`PLAN` lists every planted record: file, id, field and entity types. The
generator appends one sentence carrying the value to that field, so the PII
gate has known positives in user turns, assistant turns, system prompts,
chosen and rejected responses. :func:`find_pii_types` is a regex cross-check
(with Luhn and mod-97 validation) that the planted records are exactly the
ones holding PII.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from raw_data import pii


@dataclass(frozen=True)
class Plant:
    """One planted record: where the PII goes and which entity types it holds."""

    record_id: str
    field: str  # "messages[i]" / "prompt[0]" / "chosen[0]" / "rejected[0]" / "completion[0]" or "system"
    types: tuple[str, ...]
    variant: str = ""  # card prefix or IBAN country


PLAN = [
    Plant("sft-0012", "user", ("EMAIL_ADDRESS",)),
    Plant("sft-0047", "assistant", ("PHONE_NUMBER",)),
    Plant("sft-0093", "user", ("CREDIT_CARD",), "4111"),
    Plant("sft-0158", "user", ("IBAN_CODE",), "DE"),
    Plant("sft-0231", "system", ("IBAN_CODE",), "GB"),
    Plant("sft-0305", "user", ("US_SSN",)),
    Plant("sft-0377", "user", ("IP_ADDRESS",)),
    Plant("sft-0442", "assistant", ("EMAIL_ADDRESS", "PHONE_NUMBER")),
    Plant("pref-0021", "prompt", ("EMAIL_ADDRESS",)),
    Plant("pref-0088", "rejected", ("CREDIT_CARD",), "5500"),
    Plant("pref-0156", "chosen", ("PHONE_NUMBER",)),
    Plant("pref-0234", "prompt", ("IBAN_CODE",), "GB"),
    Plant("pref-0377", "rejected", ("EMAIL_ADDRESS",)),
    Plant("kto-0033", "prompt", ("CREDIT_CARD",), "3400"),
    Plant("kto-0119", "completion", ("EMAIL_ADDRESS",)),
    Plant("kto-0207", "completion", ("IBAN_CODE",), "DE"),
    Plant("kto-0318", "prompt", ("PHONE_NUMBER",)),
    Plant("rlhf-0045", "prompt", ("EMAIL_ADDRESS",)),
    Plant("rlhf-0152", "prompt", ("CREDIT_CARD",), "6011"),
]

_USER = {"EMAIL_ADDRESS": " You can reach me at {v}.", "PHONE_NUMBER": " My number is {v} if you need to call.",
         "CREDIT_CARD": " The card number is {v}.", "IBAN_CODE": " Please use my account {v} for any refund.",
         "US_SSN": " My social security number is {v}, if you need it to verify me.",
         "IP_ADDRESS": " The app says my login from IP address {v} was blocked."}
_ASSISTANT = {"EMAIL_ADDRESS": " We will send the confirmation to {v}.",
              "PHONE_NUMBER": " A specialist will call you back on {v} within one working day.",
              "CREDIT_CARD": " I have noted your card {v} on the case.", "IBAN_CODE": " The refund will go to {v}."}
_SYSTEM = {"IBAN_CODE": " Customer refund account on file: {v}.", "EMAIL_ADDRESS": " Customer e-mail: {v}."}


def planted_indices(prefix: str) -> set[int]:
    """0-based positions of the planted records of one file (``sft``, ``pref``, ``kto``, ``rlhf``)."""
    return {int(p.record_id.rsplit("-", 1)[1]) - 1 for p in PLAN if p.record_id.startswith(prefix + "-")}


def _value(kind: str, variant: str, rng: random.Random) -> str:
    if kind == "EMAIL_ADDRESS":
        return pii.email(rng)
    if kind == "PHONE_NUMBER":
        return pii.phone(rng)
    if kind == "CREDIT_CARD":
        return pii.card_number(rng, variant)
    if kind == "IBAN_CODE":
        return pii.iban(rng, variant)
    if kind == "US_SSN":
        return pii.ssn(rng)
    return pii.ipv4(rng)


def _target(record: dict, field: str) -> tuple[dict, dict[str, str]]:
    """The message to extend, and which sentence table applies."""
    if field in ("user", "assistant", "system"):
        message = next(m for m in record["messages"] if m["role"] == field)
        return message, {"user": _USER, "assistant": _ASSISTANT, "system": _SYSTEM}[field]
    message = record[field][0]
    return message, _USER if message["role"] == "user" else _ASSISTANT


def plant(records_by_id: dict[str, dict], rng: random.Random) -> None:
    """Append the planned PII sentences in place; an SFT plant on "system" adds a system prompt if needed."""
    for item in PLAN:
        record = records_by_id[item.record_id]
        if item.field == "system" and record["messages"][0]["role"] != "system":
            record["messages"].insert(0, {"role": "system", "content": "You are a helpful support assistant."})
        message, sentences = _target(record, item.field)
        added = "".join(sentences[kind].format(v=_value(kind, item.variant, rng)) for kind in item.types)
        if item.record_id.startswith("rlhf-"):
            # An open prompt quoting a customer message, so the PII sits in a natural place.
            message["content"] = f'Write a polite reply to this customer message: "{message["content"]}{added}"'
        else:
            message["content"] += added


_PATTERNS = {
    "EMAIL_ADDRESS": re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+"),
    "PHONE_NUMBER": re.compile(r"\(\d{3}\) \d{3}-\d{4}"),
    "US_SSN": re.compile(r"\b\d{3}-\d{2}-\d{4}\b"),
    "IP_ADDRESS": re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b"),
    "CREDIT_CARD": re.compile(r"\b\d(?:[ -]?\d){12,18}\b"),
    "IBAN_CODE": re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,3})?\b"),
}


def find_pii_types(text: str) -> set[str]:
    """Entity types whose pattern (and checksum, for cards and IBANs) occurs in ``text``."""
    found = set()
    ibans = [m.group(0) for m in _PATTERNS["IBAN_CODE"].finditer(text) if pii.iban_valid(m.group(0))]
    if ibans:
        found.add("IBAN_CODE")
    for value in ibans:  # an IBAN's digit run must not count as a card number as well
        text = text.replace(value, " ")
    for kind, pattern in _PATTERNS.items():
        if kind == "IBAN_CODE":
            continue
        for match in pattern.finditer(text):
            value = match.group(0)
            if kind == "CREDIT_CARD" and not pii.luhn_valid(value):
                continue
            found.add(kind)
    return found
