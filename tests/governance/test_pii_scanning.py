"""Scanning datasets: every string field, located by file, line, field path and offsets; overlaps; masking."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from presidio_analyzer import RecognizerResult

from governance.errors import DataError
from governance.pii import PiiScanner, detect_kind, mask_value, resolve
from governance.pii.mask import snippet
from governance.policy.pii import load_pii_policy

REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "policies" / "pii.yaml"


@pytest.fixture(scope="module")
def scanner() -> PiiScanner:
    return PiiScanner(load_pii_policy(POLICY), POLICY)


def _variant(scanner: PiiScanner, tmp_path: Path, change) -> PiiScanner:
    """The shipped policy with thresholds or actions changed; same recognizers, so the engine is reused."""
    data = yaml.safe_load(POLICY.read_text())
    change(data)
    path = tmp_path / "pii-variant.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return PiiScanner(load_pii_policy(path), path, engine=scanner.engine)


def _rule(data: dict, entity: str) -> dict:
    return next(rule for rule in data["entities"] if rule["entity"] == entity)


def _jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _located(scan_findings):
    return [(f.line, f.field, f.entity, f.start, f.end) for f in scan_findings]


def test_every_string_field_is_scanned_and_located(scanner, tmp_path):
    system = "Escalate to ops@example.com when stuck."
    card = "My card is 4111 1111 1111 1111, call (415) 555-0103."
    note = "backup contact jane.doe@example.org"
    path = _jsonl(
        tmp_path / "train.jsonl",
        [
            {"id": "a", "messages": [{"role": "user", "content": "What is 12 + 30?"}]},
            {
                "id": "b",
                "messages": [
                    {"role": "system", "content": system},
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hello"},
                    {"role": "user", "content": card},
                ],
                "meta": {"notes": ["ok", note], "score": 3},
            },
        ],
    )
    found = []
    scan = scanner.scan_file(path, "sft", sink=found.append)
    assert _located(found) == [
        (2, "messages[0].content", "EMAIL_ADDRESS", 12, 27),
        (2, "messages[3].content", "CREDIT_CARD", card.index("4111"), card.index("4111") + 19),
        (2, "messages[3].content", "PHONE_NUMBER", card.index("(415)"), card.index("(415)") + 14),
        (2, "meta.notes[1]", "EMAIL_ADDRESS", note.index("jane"), len(note)),
    ]
    assert (scan.records, scan.text_fields, scan.records_with_findings, scan.findings) == (2, 14, 1, 4)
    assert dict(scan.by_field) == {
        ("messages[*].content", "EMAIL_ADDRESS"): 1,
        ("messages[*].content", "CREDIT_CARD"): 1,
        ("messages[*].content", "PHONE_NUMBER"): 1,
        ("meta.notes[*]", "EMAIL_ADDRESS"): 1,
    }
    assert scan.entity_records("EMAIL_ADDRESS") == 1 and scan.by_entity["EMAIL_ADDRESS"].findings == 2
    assert scan.first_of("CREDIT_CARD").location() == "line 2, field messages[3].content"


def test_preference_prompt_chosen_and_rejected_are_scanned(scanner, tmp_path):
    path = _jsonl(
        tmp_path / "pref.jsonl",
        [
            {
                "prompt": [{"role": "user", "content": "Where do I send it?"}],
                "chosen": [{"role": "assistant", "content": "Use the form."}],
                "rejected": [{"role": "assistant", "content": "Mail jane.doe@example.com"}],
            }
        ],
    )
    found = []
    scanner.scan_file(path, "preference", sink=found.append)
    assert _located(found) == [(1, "rejected[0].content", "EMAIL_ADDRESS", 5, 25)]


def test_url_inside_an_email_address_is_one_finding(scanner, tmp_path):
    # At 0.5, presidio's URL recognizer reports "jane.do" (.do is a TLD) and "example.com" inside the address.
    loose = _variant(scanner, tmp_path, lambda d: _rule(d, "URL").update(score_threshold=0.5))
    text = "Mail jane.doe@example.com now."
    raw = {(r.entity_type, text[r.start : r.end]) for r in loose.analyze(text)}
    assert {("URL", "jane.do"), ("URL", "example.com"), ("EMAIL_ADDRESS", "jane.doe@example.com")} <= raw
    [finding] = loose.findings_in(text)
    assert (finding.entity, finding.start, finding.end, finding.also) == ("EMAIL_ADDRESS", 5, 25, ("URL",))


def test_email_inside_a_url_is_one_url_finding(scanner):
    text = "Open https://example.com/share?to=jane.doe@example.org now"
    [finding] = scanner.findings_in(text)
    url = "https://example.com/share?to=jane.doe@example.org"
    assert (finding.entity, text[finding.start : finding.end], finding.also) == ("URL", url, ("EMAIL_ADDRESS",))


def _rr(entity: str, start: int, end: int, score: float) -> RecognizerResult:
    return RecognizerResult(entity_type=entity, start=start, end=end, score=score)


def test_overlaps_keep_the_strictest_action_then_the_longest(scanner, tmp_path):
    strict = _variant(
        scanner, tmp_path, lambda d: _rule(d, "US_SSN").update(action="deny", severity="deny", max_records=0)
    )
    same_span = [_rr("PHONE_NUMBER", 10, 21, 0.4), _rr("US_SSN", 10, 21, 0.85)]
    [finding] = resolve(same_span, strict.rules, {"PHONE_NUMBER": 0, "US_SSN": 1})
    assert (finding.entity, finding.rule.action, finding.also) == ("US_SSN", "deny", ("PHONE_NUMBER",))
    # Both redact: the longer span wins; the finding covers the union of the overlap.
    partial = [_rr("PHONE_NUMBER", 0, 12, 0.4), _rr("US_SSN", 4, 20, 0.85)]
    [finding] = resolve(partial, scanner.rules, scanner.priority)
    assert (finding.entity, finding.start, finding.end) == ("US_SSN", 0, 20)
    # Equal length and action: the entity listed first in the policy wins.
    [finding] = resolve(same_span, scanner.rules, {"PHONE_NUMBER": 0, "US_SSN": 1})
    assert finding.entity == "PHONE_NUMBER"


def test_results_below_the_policy_threshold_are_not_findings(scanner):
    assert resolve([_rr("PHONE_NUMBER", 0, 10, 0.39)], scanner.rules, scanner.priority) == []
    assert [f.entity for f in resolve([_rr("PHONE_NUMBER", 0, 10, 0.4)], scanner.rules, scanner.priority)] == [
        "PHONE_NUMBER"
    ]


def test_masked_values_keep_shape_only():
    assert mask_value("EMAIL_ADDRESS", "jane.doe@example.org") == "***@***.org"
    assert mask_value("PHONE_NUMBER", "(415) 555-0103") == "(***) ***-****"
    assert mask_value("CREDIT_CARD", "4111 1111 1111 1111") == "**** **** **** ****"
    assert mask_value("US_SSN", "123-45-6788") == "***-**-****"


def test_snippet_masks_the_context_too(scanner):
    text = "Order 88231: card 4111 1111 1111 1111 and mail jane.doe@example.com please"
    found = scanner.findings_in(text)
    known = [(f.start, f.end, f.entity) for f in found]
    card = next(f for f in found if f.entity == "CREDIT_CARD")
    shown = snippet(text, card.start, card.end, card.entity, known, 24, scanner.analyze)
    assert shown == "Order #####: card <CREDIT_CARD> and mail <EMAIL_ADDRESS>…"
    # A context cut through another value still hides it (here: a deny-list name cut in half).
    text = "Call from Northwind Traders about card 4111 1111 1111 1111."
    found = scanner.findings_in(text)
    card = next(f for f in found if f.entity == "CREDIT_CARD")
    known = [(f.start, f.end, f.entity) for f in found]
    assert snippet(text, card.start, card.end, card.entity, known, 22, scanner.analyze) == (
        "…<CUSTOMER_NAME> about card <CREDIT_CARD>."
    )


def test_kind_is_checked_per_record_and_detected(scanner, tmp_path):
    path = _jsonl(tmp_path / "pref.jsonl", [{"id": 1, "prompt": "p", "chosen": "c", "rejected": "r"}])
    with pytest.raises(DataError) as err:
        scanner.scan_file(path, "sft")
    assert str(err.value) == (
        f"{path}:1: a sft record needs top-level messages or prompt+completion or text; "
        "found chosen, id, prompt, rejected (wrong --kind or wrong file?)"
    )
    assert detect_kind(path) == "preference"
    kto = _jsonl(tmp_path / "kto.jsonl", [{"prompt": "p", "completion": "c", "label": True}])
    assert detect_kind(kto) == "kto"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"messages": []}\n{"messages": [\n', ":2: invalid JSON (Expecting value at column 15)"),
        (
            b'{"messages": []}\n{"messages": []}\n{"messages": [{"content": "caf\xe9"}]}\n',
            ":3: invalid UTF-8 at byte 30 of the line; re-encode the file as UTF-8",
        ),
        (b"", ": no records (empty file)"),
        (b'[{"messages": []}]\n', ":1: expected a JSON object per line, got list"),
    ],
    ids=["invalid-json", "invalid-utf8", "empty", "wrong-top-level-shape"],
)
def test_bad_input_names_file_and_line(scanner, tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(DataError) as err:
        scanner.scan_file(path, "sft")
    assert str(err.value) == f"{path}{message}"


def test_records_scanned_in_batches_find_what_one_at_a_time_finds(scanner, tmp_path, monkeypatch):
    """Batches of records share one prefilter scan; findings, counts and order are those of one record at a time."""
    import governance.pii.scan as scan_module

    texts = [
        "What is 12 × 30?",
        "call (415) 555-0103 or mail jane.doe@example.org",
        "card 4111 1111 1111 1111",
        "café, extensión 12, ٣ apples",  # characters that are not inert: this text leaves the ASCII path
        "Order 7310458826 shipped",
        "",
    ]
    rows = [
        {"messages": [{"role": "user", "content": texts[n % len(texts)]}, {"role": "assistant", "content": f"{n}"}]}
        for n in range(150)
    ]
    path = _jsonl(tmp_path / "many.jsonl", rows)

    def scanned(batch_records: int):
        monkeypatch.setattr(scan_module, "BATCH_RECORDS", batch_records)
        found = []
        scan = scanner.scan_file(path, "sft", sink=found.append)
        return found, (scan.records, scan.text_fields, scan.records_with_findings, scan.findings, dict(scan.by_field))

    one_at_a_time = scanned(1)
    assert one_at_a_time[1][0] == 150 and one_at_a_time[1][3] > 50
    assert scanned(64) == one_at_a_time
    assert scanned(7) == one_at_a_time


def test_a_bad_record_mid_batch_stops_the_scan_after_the_records_before_it(scanner, tmp_path):
    good = {"messages": [{"role": "user", "content": "mail jane.doe@example.org"}]}
    path = tmp_path / "bad-late.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(good) + "\n" + '{"messages": [\n')
    found = []
    with pytest.raises(DataError) as err:
        scanner.scan_file(path, "sft", sink=found.append)
    assert str(err.value) == f"{path}:3: invalid JSON (Expecting value at column 15)"
    assert [f.line for f in found] == [1, 2]
