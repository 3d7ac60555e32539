"""Structured output: a pydantic model as a strict JSON schema, the answer validated, one repair round-trip.

Plain Python: this module never imports bpy. OpenAI's ``strict`` mode wants every object closed
(``additionalProperties: false``) and every property listed in ``required``; :func:`strict_schema` makes pydantic's
schema so. Many servers ignore the schema anyway, so the answer is always validated here: models like to wrap JSON in
a Markdown fence, which is unwrapped; anything else that does not fit gets one chance to be corrected with the
validation errors sent back, then the job fails showing what came back.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from pydantic import BaseModel, ValidationError

from ...runtime.errors import excerpt

#: How much of a bad answer an error message quotes.
QUOTE_CHARS = 400
_FENCE = re.compile(r"^\s*```[a-zA-Z0-9_-]*\s*\n(.*?)\n?\s*```\s*$", re.S)


def strict_schema(model_cls: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with every object closed and every property required (OpenAI strict mode)."""
    schema = copy.deepcopy(model_cls.model_json_schema())

    def close(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and isinstance(node.get("properties"), dict):
                node["additionalProperties"] = False
                node["required"] = list(node["properties"])
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(schema)
    return schema


def response_format(model_cls: type[BaseModel], name: str | None = None) -> dict[str, Any]:
    """The ``response_format`` of a chat request asking for ``model_cls``."""
    safe = re.sub(r"[^a-zA-Z0-9_-]", "_", name or model_cls.__name__)[:64]
    return {"type": "json_schema", "json_schema": {"name": safe, "schema": strict_schema(model_cls), "strict": True}}


def unwrap_json(text: str) -> str:
    """The JSON inside an answer: a Markdown code fence around it is removed."""
    match = _FENCE.match(text)
    return match.group(1) if match else text.strip()


def validate_answer(model_cls: type[BaseModel], text: str) -> tuple[BaseModel | None, list[str]]:
    """``(instance, [])`` when the answer fits, else ``(None, readable errors)``."""
    try:
        return model_cls.model_validate_json(unwrap_json(text)), []
    except ValidationError as exc:
        return None, describe_errors(exc)


def describe_errors(exc: ValidationError, limit: int = 20) -> list[str]:
    """One line per problem: ``shots.0.duration_s: Input should be less than or equal to 60 (got 90)``."""
    lines = []
    for err in exc.errors(include_url=False)[:limit]:
        where = ".".join(str(p) for p in err.get("loc", ())) or "(the whole answer)"
        got = err.get("input")
        shown = "" if err.get("type") == "json_invalid" or isinstance(got, (dict, list)) else f" (got {got!r:.60})"
        lines.append(f"{where}: {err.get('msg', 'invalid')}{shown}")
    return lines


def repair_request(errors: list[str], schema: dict[str, Any]) -> str:
    """The user turn that sends the validation errors back to the model."""
    return (
        "Your answer does not match the required JSON schema. Problems:\n- "
        + "\n- ".join(errors)
        + "\nReply again with only the corrected JSON object, matching this schema:\n"
        + json.dumps(schema, separators=(",", ":"))
    )


def quote(text: str) -> str:
    """A bad answer shortened for an error message (redacted before it is cut)."""
    return excerpt(text.strip(), QUOTE_CHARS + 1)
