"""File names for saved media: templates of a stream's name and a start time.

Only ``{stream}`` and ``{start}`` (with an optional strftime format) are
allowed: no attributes, indexes, conversions or nested fields, and nothing that
renders to a control character or an empty name.
"""

from __future__ import annotations

import re
import string
from datetime import datetime
from pathlib import PurePath
from typing import Final, Literal

_FIELDS: Final = ("stream", "start")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1

type NameProblem = Literal["template", "control", "empty"]


class InvalidNameError(ValueError):
    """A file name template that cannot be used; ``reason`` says why."""

    def __init__(self, reason: NameProblem, detail: str) -> None:
        """Keep the reason for a translated message."""
        super().__init__(detail)
        self.reason: NameProblem = reason


def _check_fields(template: str, *, nested: bool) -> None:
    """Allow ``{stream}`` and ``{start}`` / ``{start:<strftime>}``, nothing more.

    Format specs may hold fields of their own, which reach attribute access:
    every level is parsed, and a spec must be plain text.
    """
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as err:
        raise InvalidNameError("template", f"Malformed template: {err}") from err
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if nested:
            raise InvalidNameError(
                "template", f"Placeholder {{{name}}} inside a date format"
            )
        if name not in _FIELDS:
            raise InvalidNameError("template", f"Unknown placeholder {{{name}}}")
        if conversion is not None or (spec and name != "start"):
            raise InvalidNameError(
                "template", f"Placeholder {{{name}}} takes no conversion or format"
            )
        if spec:
            _check_fields(spec, nested=True)


def render_name(template: str, *, stream: str, start: datetime) -> str:
    """Fill ``{stream}`` and ``{start:<strftime>}`` in; InvalidNameError if not.

    Only those two names are allowed, without attribute or index access or
    nested fields, so a template cannot reach into Python objects. Control
    characters (NUL, line breaks) are refused, in the template and the result.
    """
    if _CONTROL.search(template):
        raise InvalidNameError("control", "Control character in the template")
    _check_fields(template, nested=False)
    try:
        rendered = template.format(stream=stream, start=start)
    except (ValueError, TypeError, IndexError, OverflowError) as err:
        raise InvalidNameError("template", f"Cannot fill the template: {err}") from err
    if _CONTROL.search(rendered):
        raise InvalidNameError("control", "Control character in the file name")
    try:
        rendered.encode()
    except UnicodeEncodeError as err:  # a lone surrogate, from YAML
        raise InvalidNameError("control", f"Not a character: {err}") from err
    if not rendered.strip() or not PurePath(rendered).name.strip():
        raise InvalidNameError("empty", "Empty file name")
    return rendered
