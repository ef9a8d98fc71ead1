"""Validation against GS1's official EPCIS 2.0 JSON schema, bundled in `epcis/data/`.

The schema declares JSON Schema draft-07. Two draft-07 validators are built once and reused:
jsonschema-rs decides (fast), and `jsonschema` lists the problems of a rejected document
with their JSON paths. Its two string formats matter for the meaning of
a document and are checked here without optional packages:

- ``date-time`` (RFC 3339, as `creationDate`, `eventTime`, `recordTime` use): a wrong time
  must be rejected at capture, not discovered when a timeline is sorted;
- ``uri``: the schema accepts extension fields only when their name is a URI (a
  ``prefix:name`` compact IRI such as ``example:myField``), so checking the format is what
  rejects a misspelt standard field (``bizstep``) instead of keeping it as an extension.

Errors name the JSON path of the offending value, at most `MAX_PROBLEMS` of them, so a
rejected 10,000-event document answers with a readable message.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from functools import lru_cache
from importlib import resources
from itertools import islice
from typing import Any

import jsonschema_rs
from jsonschema import Draft7Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from ledger.errors import InvalidEpcisDocument

#: The bundled files, byte-identical copies of GS1's published schema and disclaimer.
SCHEMA_FILE = "EPCIS-JSON-Schema.json"
LICENSE_FILE = "LICENSE-GS1.txt"
#: At most this many schema problems are listed in an error message.
MAX_PROBLEMS = 10

_DATE_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})", re.ASCII
)
# RFC 3986: a scheme, a colon, then only characters a URI may hold (or %-escapes).
_URI = re.compile(
    r"[A-Za-z][A-Za-z0-9+.\-]*:(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?#\[\]]|%[0-9A-Fa-f]{2})*",
    re.ASCII,
)


def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True  # formats only constrain strings; `type` catches the rest
    if not _DATE_TIME.fullmatch(value):
        return False
    try:
        datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
    except ValueError:
        return False  # 2020-02-30, 25:00, leap second 60 (not representable, so refused)
    return True


def _is_uri(value: object) -> bool:
    return not isinstance(value, str) or _URI.fullmatch(value) is not None


def schema_bytes(name: str = SCHEMA_FILE) -> bytes:
    """The bytes of a bundled file (the schema by default), read from the installed package."""
    return resources.files("epcis").joinpath("data", name).read_bytes()


@lru_cache(maxsize=1)
def validator() -> Draft7Validator:
    """The one draft-07 validator for the bundled schema, with the formats above checked."""
    schema = json.loads(schema_bytes())
    Draft7Validator.check_schema(schema)
    checker = FormatChecker(formats=())
    checker.checks("date-time")(_is_date_time)
    checker.checks("uri")(_is_uri)
    return Draft7Validator(schema, format_checker=checker)


@lru_cache(maxsize=1)
def event_validator() -> Draft7Validator:
    """The validator of one event of an event list (the schema's `EPCIS-Document-Event`)."""
    schema = json.loads(schema_bytes())
    event_schema = {
        "$ref": "#/definitions/EPCIS-Document-Event",
        "definitions": schema["definitions"],
    }
    return Draft7Validator(event_schema, format_checker=validator().format_checker)


@lru_cache(maxsize=1)
def fast_validator() -> jsonschema_rs.Draft7Validator:
    """The same schema and format checks compiled by jsonschema-rs (Rust), ~50x faster.

    It answers "valid or not" for every capture; the pure-Python `validator` then runs only
    on rejected documents, to list the problems with their paths.
    """
    return jsonschema_rs.Draft7Validator(
        json.loads(schema_bytes()),
        validate_formats=True,
        formats={"date-time": _is_date_time, "uri": _is_uri},
    )


def json_path(path: Any) -> str:
    """`$.epcisBody.eventList[3].eventTime` for a jsonschema path deque."""
    out = "$"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _describe(error: ValidationError, prefix: tuple[str | int, ...] = ()) -> str:
    # `anyOf` (and `if`/`then` inside it) wrap the useful error in `context`: follow the
    # branch that got deepest into the document, then name the alternatives tried there.
    if "propertyNames" in error.schema_path:
        return (
            f"{json_path((*prefix, *error.absolute_path))}: field {error.instance!r} is neither an EPCIS "
            "field of this object nor an extension named by a URI (prefix:name)"
        )
    node = error
    while node.context:
        deepest = max(node.context, key=lambda e: len(e.absolute_path))
        if len(deepest.absolute_path) <= len(node.absolute_path):
            break
        node = deepest
    message = node.message
    if node.context:
        tried = sorted({_clip(e.message, 80) for e in node.context})[:3]
        message += " (" + "; ".join(tried) + ")"
    return f"{json_path((*prefix, *node.absolute_path))}: {_clip(message, 300)}"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def problems(document: object, limit: int = MAX_PROBLEMS) -> list[str]:
    """Up to `limit` schema problems of `document`, each "<json path>: <message>"; [] if valid.

    jsonschema-rs decides and locates the failing events; the pure-Python validator then
    describes only those events and the document around its event list, so rejecting one
    bad event in 10,000 costs about as much as accepting the document. An event without a
    `type` fails every alternative of the schema's event dispatch; only the missing `type`
    is reported for it, not the noise of each alternative.
    """
    fast = fast_validator()
    if fast.is_valid(document):
        return []
    bad_events: dict[tuple[str, ...], list[int]] = {}
    for rs_error in islice(fast.iter_errors(document), 50 * limit):
        path = list(rs_error.instance_path)
        for k in range(len(path) - 1):
            index = path[k + 1]
            if path[k] == "eventList" and isinstance(index, int):
                indices = bad_events.setdefault(tuple(str(p) for p in path[: k + 1]), [])
                if index not in indices:
                    indices.append(index)
                break
    found = _described(validator(), _without_events(document), (), limit)
    for list_path, indices in bad_events.items():
        events = _at(document, list_path)
        for index in indices:
            if len(found) >= limit:
                break
            found += _described(
                event_validator(), events[index], (*list_path, index), limit - len(found)
            )
    if not found:  # the two validators disagree: still reject, with jsonschema-rs's words
        for rs_error in islice(fast.iter_errors(document), limit):
            found.append(f"{json_path(rs_error.instance_path)}: {_clip(rs_error.message, 300)}")
    return found


def _described(
    checker: Draft7Validator, instance: object, prefix: tuple[str | int, ...], limit: int
) -> list[str]:
    errors = list(islice(checker.iter_errors(instance), 20 * limit))
    untyped = {tuple(e.absolute_path) for e in errors if _is_missing_type(e)}
    found: list[str] = []
    for error in errors:
        path = tuple(error.absolute_path)
        if not _is_missing_type(error) and any(path[: len(u)] == u for u in untyped):
            continue
        text = _describe(error, prefix)
        if text not in found:
            found.append(text)
        if len(found) >= limit:
            break
    return found


def _event_list_paths() -> tuple[tuple[str, ...], ...]:
    return (("epcisBody", "eventList"), ("epcisBody", "queryResults", "resultsBody", "eventList"))


def _at(document: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        document = document[key]
    return document


def _without_events(document: object) -> object:
    """`document` with its event lists emptied (copied only along the way to them)."""
    for path in _event_list_paths():
        node: Any = document
        parents: list[tuple[Any, str]] = []
        for key in path:
            if not isinstance(node, dict) or key not in node:
                break
            parents.append((node, key))
            node = node[key]
        else:
            if isinstance(node, list):
                replacement: Any = []
                for parent, key in reversed(parents):
                    replacement = {**parent, key: replacement}
                document = replacement
    return document


def _is_missing_type(error: ValidationError) -> bool:
    return bool(error.validator == "required" and error.message == "'type' is a required property")


def validate(document: dict[str, Any]) -> None:
    """Raise `InvalidEpcisDocument` unless `document` is a valid EPCIS 2.0 document.

    Beyond the schema (which accepts any JSON object with a string `type`), the document
    must be an `EPCISDocument` or an `EPCISQueryDocument`: a capture carries events, not a
    bare event or master data on its own.
    """
    if not isinstance(document, dict):
        raise InvalidEpcisDocument(
            f"an EPCIS document must be a JSON object, not {type(document).__name__}",
            [f"$: expected an object, got {type(document).__name__}"],
        )
    if document.get("type") not in ("EPCISDocument", "EPCISQueryDocument"):
        # Checked first: the schema would read any other object as a (bad) bare event.
        found = [f"$.type: {document.get('type')!r} is not 'EPCISDocument' or 'EPCISQueryDocument'"]
    else:
        found = problems(document)
    if found:
        more = " (first ones)" if len(found) >= MAX_PROBLEMS else ""
        raise InvalidEpcisDocument(
            f"not a valid EPCIS 2.0 document{more}: " + "; ".join(found), found
        )
