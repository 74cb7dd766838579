"""Which representation of a page a request wants: `?format=` names one outright, else the Accept
header's ranking decides.

Why both: a browser sends an Accept header that ranks HTML first and cannot be changed from a link,
a program sends `Accept: application/json` or adds `?format=json`. A request that names an unknown
format, or accepts none of what is offered, gets a 4xx with the reason, never a guess.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.exceptions import HTTPException


def _ranges(accept: str) -> list[tuple[str, float]]:
    """(media range, q) of each entry of an Accept header; a malformed q ranks the entry 0."""
    ranges = []
    for entry in accept.split(","):
        media, *params = (part.strip() for part in entry.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = min(1.0, max(0.0, float(value)))
                except ValueError:
                    quality = 0.0
        if media:
            ranges.append((media.lower(), quality))
    return ranges


def _quality(media: str, ranges: list[tuple[str, float]]) -> float:
    """The q of the most specific range that matches: `type/sub` over `type/*` over `*/*` (RFC 9110, 12.5.1)."""
    best: tuple[int, float] | None = None
    for candidate, quality in ranges:
        if candidate == media:
            specificity = 2
        elif candidate.endswith("/*") and media.startswith(candidate[:-1]):
            specificity = 1
        elif candidate == "*/*":
            specificity = 0
        else:
            continue
        if best is None or specificity > best[0]:
            best = (specificity, quality)
    return 0.0 if best is None else best[1]


def negotiate(accept: str | None, offered: tuple[str, ...]) -> str | None:
    """The offered media type the header ranks highest; the first offered on a tie or without a
    header; None when the header accepts none of them."""
    if not accept or not accept.strip():
        return offered[0]
    ranges = _ranges(accept)
    quality, _, media = max((_quality(media, ranges), -i, media) for i, media in enumerate(offered))
    return media if quality > 0 else None


def representation(format_param: str | None, accept: str | None, formats: Mapping[str, str]) -> str:
    """The media type to answer with, of `formats` (format name → media type, the default first).

    Raises 422 for a `?format=` that is not one of `formats`, 406 when the Accept header takes none."""
    if format_param is not None:
        if format_param not in formats:
            raise HTTPException(422, f"format must be one of {', '.join(formats)}, not {format_param[:40]!r}")
        return formats[format_param]
    media = negotiate(accept, tuple(formats.values()))
    if media is None:
        raise HTTPException(
            406,
            f"this page is available as {', '.join(formats.values())}; the Accept header "
            f"takes none of them (or use ?format={'|'.join(formats)})",
        )
    return media
