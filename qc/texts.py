"""Sentences with values: kept in English, shown in the reader's language.

A :class:`Text` is a ``str`` whose value is the English sentence, what the database,
the audit trail, a signed checklist and the tests keep, so it goes wherever a string
went before. It also remembers its template (marked with ``gettext_noop``) and its
values; ``.text`` is the same sentence in the active language, what pages show. A
value may itself be a ``Text`` (a problem inside a refusal): it is translated with the
sentence that carries it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.utils.translation import gettext


def _english(value: Any) -> Any:
    return str.__str__(value) if isinstance(value, Text) else value


def _translatable(value: Any) -> bool:
    """A ``Text``, or another translatable sentence (one with a ``.text``, not a plain string)."""
    return isinstance(value, Text) or (not isinstance(value, str) and isinstance(getattr(value, "text", None), str))


def english_of(value: Any) -> str:
    """The English, as a plain string (what is stored and hashed)."""
    return str.__str__(value) if isinstance(value, str) else str(value)


class Text(str):
    template: str
    params: dict[str, Any]

    def __new__(cls, template: str, params: Mapping[str, Any] | None = None) -> Text:
        values = dict(params or {})
        english = template % {k: _english(v) for k, v in values.items()} if values else template
        obj = super().__new__(cls, english)
        obj.template = template
        obj.params = values
        return obj

    def __reduce__(self):  # copy and pickle keep the template and the values
        return (Text, (self.template, self.params))

    @property
    def english(self) -> str:
        return str.__str__(self)

    def as_json(self) -> dict[str, Any]:
        """Template and values, to store beside the English and translate when shown."""
        return {"template": self.template,
                "params": {k: (v.as_json() if isinstance(v, Text) else english_of(v) if isinstance(v, str) else v)
                           for k, v in self.params.items()}}

    @classmethod
    def from_json(cls, data: Any) -> Text:
        if isinstance(data, dict) and data.get("lowered"):
            return Lowered(data.get("template", ""))
        params = {k: (cls.from_json(v) if isinstance(v, dict) else v) for k, v in (data.get("params") or {}).items()}
        return Text(data.get("template", ""), params)

    @property
    def text(self) -> str:
        """The sentence in the active language (English where no translation exists)."""
        return translate(self.template, self.params, english=self.english)


class Lowered(Text):
    """A choice label inside a sentence ("the batch is on hold"): lower case, translated."""

    def __new__(cls, label: str) -> Lowered:
        obj = str.__new__(cls, str(label).lower())
        obj.template = str(label)
        obj.params = {}
        return obj

    def __reduce__(self):
        return (Lowered, (self.template,))

    def as_json(self) -> dict[str, Any]:
        return {"template": self.template, "lowered": True}

    @property
    def text(self) -> str:
        return gettext(self.template).lower() if self.template else ""


def translate(template: str, params: Mapping[str, Any], *, english: str) -> str:
    """``template`` in the active language with ``params`` filled in, each ``Text``
    value translated too; ``english`` when that cannot be done."""
    translated = gettext(template) if template else template
    values = {k: (v.text if _translatable(v) else v) for k, v in params.items()}
    if translated == template and values == params:
        return english
    try:
        return translated % values if values else translated
    except (KeyError, ValueError, TypeError):  # a broken translation never hides the sentence
        return english


def text_of(value: Any) -> str:
    """What a page shows for a stored or computed string: a ``Text`` in the reader's
    language, any other string as it is."""
    return value.text if _translatable(value) else str(value)


def joined(parts: Iterable[str], sep: str = " ") -> Text:
    """Several sentences as one; each part that is a ``Text`` is translated on its own."""
    parts = list(parts)
    template = sep.replace("%", "%%").join(f"%(p{i})s" for i in range(len(parts)))
    return Text(template, {f"p{i}": part for i, part in enumerate(parts)})
