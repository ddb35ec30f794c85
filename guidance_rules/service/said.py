"""Text about a request that is shown in a card's Markdown: what came from the EHR is never markup.

A `Said` is plain text (what the consultation record keeps) that also knows its Markdown form, in
which every value taken from the request is an inline code span: a code span shows its content
literally, so a link, image, HTML tag or bare URL in EHR data is neither rendered nor linkified.
Our own wording around the values is backslash-escaped, so it cannot become markup either.
"""

from __future__ import annotations

import re

# CommonMark lets any ASCII punctuation be backslash-escaped; our own wording escapes those that
# could open a code span, a link or image, an HTML tag or entity, or emphasis with `*` (an
# underscore inside a word, as in anatomy_variance, is never emphasis and is left as written).
_MARKUP = re.compile(r"([\\`*\[\]<>&])")
_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")
VALUE_LIMIT = 300  # characters of one request value shown on a card


def escape(text: str) -> str:
    """Our own text as Markdown that renders as itself (no line breaks expected in it)."""
    return _MARKUP.sub(r"\\\1", _BREAKS.sub(" ", text))


def code_span(value: str) -> str:
    """A request value as an inline code span: literal text in every CommonMark renderer."""
    text = _BREAKS.sub(" ", value)
    if len(text) > VALUE_LIMIT:
        text = text[: VALUE_LIMIT - 1] + "…"
    if not text.strip():
        return "(empty)"
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


class Said(str):
    """Plain text with its Markdown form. `template` holds one `{}` per value; the values are
    what came from the request (our own wording, mapping codes included, goes in the template)."""

    markdown: str
    headline: str  # the plain text with the request's values left out, for a card's summary

    def __new__(cls, template: str, *values: object) -> Said:
        pieces = template.split("{}")
        if len(pieces) != len(values) + 1:
            raise ValueError(f"template {template!r} has {len(pieces) - 1} slots for {len(values)} values")
        shown = [str(v) for v in values]
        said = super().__new__(cls, "".join(p + v for p, v in zip(pieces, [*shown, ""], strict=True)))
        said.markdown = "".join(escape(p) + code_span(v) for p, v in zip(pieces[:-1], shown, strict=True)) + escape(pieces[-1])
        said.headline = "…".join(pieces)
        return said

    def within(self, prefix: str, suffix: str = "") -> Said:
        """This text with our own words before and after it."""
        out = str.__new__(Said, prefix + self + suffix)
        out.markdown = escape(prefix) + self.markdown + escape(suffix)
        out.headline = prefix + self.headline + suffix
        return out


def markdown(text: str) -> str:
    """Any note or problem as Markdown: a Said's own form, other text escaped whole."""
    return text.markdown if isinstance(text, Said) else escape(text)


def headline(text: str) -> str:
    """The text a summary may quote: a Said without the request's values."""
    return text.headline if isinstance(text, Said) else text
