from __future__ import annotations

from typing import cast

from django import forms
from django.utils.translation import gettext_lazy as _

from carmfg.audit.models import Action
from carmfg.audit.selectors import AuditFilter
from carmfg.choices import translated_choices


class AuditFilterForm(forms.Form):
    site = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label=_("Site"))
    root = forms.CharField(required=False, max_length=170, label=_("Record (e.g. batches.batch:12)"))
    username = forms.CharField(required=False, max_length=150, label=_("User"))
    object_type = forms.CharField(required=False, max_length=100, label=_("Object type"))
    action = forms.ChoiceField(label=_("Action"), required=False, choices=[("", "Any action"), *translated_choices(Action.choices)])
    date_from = forms.DateField(required=False, label=_("From (UTC)"), widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label=_("To (UTC)"), widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, sites, **kwargs):
        super().__init__(*args, **kwargs)
        self.sites = {s.pk: s for s in sites}
        site_field = cast(forms.TypedChoiceField, self.fields["site"])
        site_field.choices = [("", "All my sites"), *((s.pk, s.name) for s in sites)]

    def clean(self):
        data = super().clean() or {}
        for name in ("root", "username", "object_type"):
            if "\x00" in (data.get(name) or ""):
                self.add_error(name, "Contains a NUL byte.")
        root = data.get("root") or ""
        if root and ":" not in root:
            self.add_error("root", "Write the record as type:id, e.g. batches.batch:12.")
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", "The end date is before the start date.")
        return data

    def to_filter(self) -> AuditFilter:
        data = self.cleaned_data
        root_type, _, root_id = (data.get("root") or "").partition(":")
        return AuditFilter(
            site=self.sites.get(data.get("site")) if data.get("site") else None,
            root_type=root_type.strip(),
            root_id=root_id.strip(),
            username=(data.get("username") or "").strip(),
            object_type=(data.get("object_type") or "").strip(),
            action=data.get("action") or "",
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
        )
