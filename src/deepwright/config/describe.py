"""Readable config errors: one line per pydantic issue, naming the key path as the user wrote it."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Annotated, Any, Union

from pydantic import BaseModel


def describe_issue(issue: dict, root: type[BaseModel]) -> str:
    """One line for one pydantic issue: the key path as the user wrote it, then what is wrong."""
    path, parent, annotation = _resolve_location(issue["loc"], root)
    kind = issue["type"]
    if kind == "extra_forbidden":
        key = str(issue["loc"][-1])
        valid = list(parent.model_fields) if parent else []
        close = difflib.get_close_matches(key, valid, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"valid keys: {', '.join(valid)}"
        return f"{path}: unknown key; {hint}"
    if kind == "union_tag_invalid":
        tag, expected = issue["ctx"]["tag"], issue["ctx"]["expected_tags"]
        choices = [choice.strip(" '") for choice in expected.split(",")]
        close = difflib.get_close_matches(tag, choices, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"{path}.type: unknown type {tag!r}; {hint}choices: {', '.join(choices)}"
    if kind == "union_tag_not_found":
        tags = [_type_tag(member) for member in _union_members(_unwrap(annotation)) or (annotation,)]
        return f"{path}: missing key 'type'; choices: {', '.join(str(tag) for tag in tags)}"
    if kind == "missing":
        return f"{path}: missing required key"
    if kind == "literal_error":
        choices = [choice.strip(" '") for choice in issue["ctx"]["expected"].replace(" or ", ", ").split(",")]
        close = difflib.get_close_matches(str(issue.get("input")), choices, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"{path}: {issue.get('input')!r} is not a choice; {hint}choices: {', '.join(choices)}"
    received = issue.get("input")
    shown = "" if isinstance(received, (dict, list)) else f" (got {received!r})"
    message = issue["msg"].removeprefix("Value error, ")
    return f"{path or 'config'}: {message}{shown}"


def _resolve_location(loc: tuple, root: type[BaseModel]) -> tuple[str, type[BaseModel] | None, Any]:
    """Turn pydantic's location into `a.b[0].c`, dropping union tags; also return the innermost model
    and the annotation at the location."""
    annotation: Any = root
    parent: type[BaseModel] | None = root
    path = ""
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(part, int):
            path += f"[{part}]"
            args = typing.get_args(annotation)
            annotation = args[0] if args else None
            continue
        tagged = [m for m in _union_members(annotation) or (annotation,) if _type_tag(m) == part]
        if tagged and part not in tagged[0].model_fields:
            annotation = tagged[0]
            continue
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            parent = annotation
            field = annotation.model_fields.get(part)
            annotation = field.annotation if field else None
        path += f".{part}" if path else str(part)
    return path, parent, annotation


def _unwrap(annotation: Any) -> Any:
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    members = _union_members(annotation)
    non_none = [m for m in members if m is not type(None)]
    if members and len(non_none) == 1:
        return _unwrap(non_none[0])
    return annotation


def _union_members(annotation: Any) -> tuple:
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return tuple(_unwrap(member) for member in typing.get_args(annotation))
    return ()


def _type_tag(model: Any) -> str | None:
    if isinstance(model, type) and issubclass(model, BaseModel) and "type" in model.model_fields:
        args = typing.get_args(model.model_fields["type"].annotation)
        return args[0] if args else None
    return None
