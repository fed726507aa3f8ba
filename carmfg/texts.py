"""Sentences with values: kept in English, shown in the reader's language.

A :class:`Text` is a ``str`` whose value is the English sentence, what the database,
the audit trail, a signed checklist, logs and tests keep, so it goes wherever a string
went before. It also remembers its template (marked with ``gettext_noop`` where it is
written) and its values; ``.text`` is the same sentence in the active language, what
pages and the API show. A value may itself be a ``Text`` (a problem inside a refusal,
a field's name, a choice label): it is translated with the sentence that carries it::

    Text(gettext_noop("%(field)s: expected a number."), {"field": Text(gettext_noop("Volume"))})

Domain errors (``carmfg.exceptions.GMPError``) keep their message the same way and
translate it with :func:`translate`, as a ``Text`` does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext

if TYPE_CHECKING:
    from carmfg.exceptions import GMPError


def _render(template: str, params: Mapping[str, Any]) -> str:
    return template % params if params else template


class Text(str):
    """An English template and its values: the string is the English, ``.text`` the translation."""

    template: str
    params: dict[str, Any]

    def __new__(cls, template: str, params: Mapping[str, Any] | None = None) -> Text:
        values = dict(params or {})
        obj = super().__new__(cls, _render(template, {k: english_of(v) if isinstance(v, Text) else v
                                                      for k, v in values.items()}))
        obj.template = template
        obj.params = values
        return obj

    def __reduce__(self):  # copy and pickle keep the template and the values
        return (Text, (self.template, self.params))

    @classmethod
    def literal(cls, value: object) -> Text:
        """A value shown as it is, never looked up in the catalogue (e.g. what was scanned)."""
        return cls("%(value)s", {"value": value})

    @classmethod
    def of(cls, error: GMPError) -> Text:
        """The message of a domain error, kept translatable."""
        return cls(error.template, error.params)

    @property
    def message(self) -> str:
        """The English, as a plain string."""
        return str.__str__(self)

    @property
    def text(self) -> str:
        """The sentence in the active language (English where no translation exists)."""
        return translate(self.template, self.params, english=self.message)

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


class Lowered(Text):
    """A choice label inside a sentence ("the batch is on hold", "apheresis bag"): the
    English is lower-cased; the translation only lower-cases its first letter, so that
    abbreviations stay as they are ("образец ОКК", "фаза I")."""

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
        translated = gettext(self.template) if self.template else ""
        if translated == self.template:
            return self.message
        return translated[:1].lower() + translated[1:]


def translate(template: str, params: Mapping[str, Any], *, english: str) -> str:
    """``template`` in the active language with ``params`` filled in, each ``Text`` value
    translated too; ``english`` when that cannot be done."""
    if not template:
        return english  # gettext("") would be the catalogue's header
    try:
        return _render(gettext(template), {name: shown(value) for name, value in params.items()})
    except (KeyError, ValueError, TypeError):  # a broken translation never hides the sentence
        return english


def shown(value: Any) -> Any:
    """A value as a page shows it: a :class:`Text` in the active language, anything else as it is."""
    return value.text if isinstance(value, Text) else value


def text_of(value: Any) -> str:
    """What a page shows for a stored or computed string: a :class:`Text` in the reader's
    language, anything else as it is."""
    return str(shown(value))


def english_of(value: Any) -> str:
    """The English, as a plain string (what is stored and hashed)."""
    return str.__str__(value) if isinstance(value, str) else str(value)


def label(value: Any) -> Any:
    """A fixed English label from our code used as a value in a message (a field's name,
    what a permission allows) as a :class:`Text`, when it is a plain string; anything
    else as it is. Mark the literal with ``gettext_noop`` where it is written."""
    return Text(value) if type(value) is str else value


def joined(parts: Iterable[Any], sep: str = " ") -> Text:
    """Several sentences (or plain values) as one; each part that is a ``Text`` is translated on its own."""
    parts = list(parts)
    template = sep.replace("%", "%%").join(f"%(p{i})s" for i in range(len(parts)))
    return Text(template, {f"p{i}": part for i, part in enumerate(parts)})
