"""Forms of the execution pages: they only parse and bound input (Django refuses NUL
bytes in every CharField); every GMP rule is checked again by the services."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django import forms
from django.utils.translation import gettext_lazy as _

from batches.calculations import REGISTRY
from batches.models import ContainerType, DeviationClass, EquipmentStatus, StepKind
from batches.services.mbr import STEP_LIMIT_FIELDS
from carmfg.choices import translated_choices

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

SIGNATURE_HELP = _("Your signature: re-enter your password.")
SIGNATURE_LABEL = _("Password (signature)")


def password_field(label: StrOrPromise = SIGNATURE_LABEL) -> forms.CharField:
    return forms.CharField(label=label, max_length=4096, required=False, strip=False,
                           widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}), help_text=SIGNATURE_HELP)


class StepForm(forms.Form):
    """Recording (or correcting) one step; the fields shown depend on the step's kind."""

    value = forms.CharField(label=_("Value"), max_length=40, required=False,
                            widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off",
                                                          "spellcheck": "false"}))
    unit = forms.CharField(max_length=40, required=False, widget=forms.HiddenInput)
    lot_barcode = forms.CharField(label=_("Scan the lot barcode"), max_length=200, required=False,
                                  widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false",
                                                                "class": "scan"}))
    equipment_code = forms.CharField(label=_("Scan the equipment asset label"), max_length=200, required=False,
                                     widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false",
                                                                   "class": "scan"}))
    scanned_code = forms.CharField(label=_("Scan the label (DIN)"), max_length=200, required=False,
                                   widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false",
                                                                 "class": "scan"}))
    quantity = forms.CharField(label=_("Quantity used"), max_length=20, required=False)
    confirmed = forms.BooleanField(label=_("I checked the value and confirm it"), required=False)
    comment = forms.CharField(label=_("Comment"), max_length=2000, required=False,
                              widget=forms.Textarea(attrs={"rows": 2}))
    reason = forms.CharField(label=_("Reason for the correction"), max_length=2000, required=False,
                             widget=forms.Textarea(attrs={"rows": 2}))
    password = password_field()
    expected_occurrence = forms.IntegerField(required=False, min_value=1, max_value=32767, widget=forms.HiddenInput)
    expected_version = forms.IntegerField(required=False, min_value=1, max_value=2**31, widget=forms.HiddenInput)

    KIND_FIELDS = {
        StepKind.VALUE: ("value", "unit"),
        StepKind.MATERIAL: ("lot_barcode", "quantity"),
        StepKind.EQUIPMENT: ("equipment_code",),
        StepKind.SCAN: ("scanned_code",),
        StepKind.SAMPLE: ("scanned_code",),
    }

    def __init__(self, *args, definition, correcting: bool = False, ask_confirmation: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.definition = definition
        keep = set(self.KIND_FIELDS.get(definition.kind, ())) | {"comment", "password"}
        keep |= {"expected_version", "reason"} if correcting else {"expected_occurrence"}
        if ask_confirmation or (self.is_bound and self.data.get("confirmed")):
            keep.add("confirmed")
        for name in list(self.fields):
            if name not in keep:
                del self.fields[name]
        if "value" in self.fields:
            self.fields["value"].label = f"{definition.title} ({definition.unit})" if definition.unit else definition.title
            places = definition.decimal_places
            self.fields["value"].help_text = (
                "Whole number" if places == 0 else f"Up to {places} decimal place{'s' if places > 1 else ''}"
            ) + (". Large counts: 1.2e9 or 1.2x10^9." if definition.unit.endswith("cells") else ".")
        if "quantity" in self.fields and definition.quantity is not None:
            self.fields["quantity"].help_text = f"Leave empty for the recipe's {definition.quantity.normalize():f} {definition.unit}."
        if "reason" in self.fields:
            self.fields["reason"].required = True
        if "confirmed" in self.fields:
            self.fields["comment"].label = "Comment (required to confirm)"
        first: str = next((n for n in ("value", "lot_barcode", "equipment_code", "scanned_code") if n in self.fields),
                          "password")
        self.fields[first].widget.attrs["autofocus"] = True

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        out: dict[str, object] = {name: data.get(name) for name in
                                  ("value", "lot_barcode", "equipment_code", "scanned_code", "quantity")
                                  if name in self.fields}
        if "unit" in self.fields:
            out["unit"] = data.get("unit") if data.get("unit") not in (None, "") else None
        out["confirmed"] = bool(data.get("confirmed"))
        return out


class SignForm(forms.Form):
    password = password_field()
    comment = forms.CharField(label=_("Comment"), max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 2}))
    expected_version = forms.IntegerField(required=False, min_value=1, max_value=2**31, widget=forms.HiddenInput)


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=2000, required=True, widget=forms.Textarea(attrs={"rows": 2}))
    expected_version = forms.IntegerField(min_value=1, max_value=2**31, widget=forms.HiddenInput)


class VersionForm(forms.Form):
    expected_version = forms.IntegerField(min_value=1, max_value=2**31, widget=forms.HiddenInput)


class RequestUseForm(forms.Form):
    lot_barcode = forms.CharField(max_length=200, required=False, widget=forms.HiddenInput)
    equipment_code = forms.CharField(max_length=200, required=False, widget=forms.HiddenInput)
    justification = forms.CharField(label=_("Why must this be used? (goes to the QP)"), max_length=10_000,
                                    widget=forms.Textarea(attrs={"rows": 3}))


class BatchFilterForm(forms.Form):
    state = forms.ChoiceField(required=False, label=_("State"))
    q = forms.CharField(required=False, max_length=40, label=_("Batch or DIN"))

    def __init__(self, *args, states, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["state"].choices = [("", _("All states")), *translated_choices(states)]  # type: ignore[attr-defined]


# --- deviations -----------------------------------------------------------------------------------


class DeviationRaiseForm(forms.Form):
    classification = forms.ChoiceField(label=_("Classification"), choices=translated_choices(DeviationClass.choices), initial=DeviationClass.MINOR)
    title = forms.CharField(label=_("Title"), max_length=200)
    description = forms.CharField(label=_("Description"), max_length=10_000, widget=forms.Textarea(attrs={"rows": 4}))
    batch = forms.ChoiceField(required=False, label=_("Batch (if any)"))

    def __init__(self, *args, batches, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["batch"].choices = [("", "— none —"), *((str(b.pk), b.number) for b in batches)]  # type: ignore[attr-defined]


class DeviationUpdateForm(forms.Form):
    classification = forms.ChoiceField(label=_("Classification"), choices=translated_choices(DeviationClass.choices))
    title = forms.CharField(label=_("Title"), max_length=200)
    description = forms.CharField(label=_("Description"), max_length=10_000, widget=forms.Textarea(attrs={"rows": 3}))
    impact_assessment = forms.CharField(label=_("Impact assessment"), max_length=10_000, required=False, widget=forms.Textarea(attrs={"rows": 3}))
    root_cause = forms.CharField(label=_("Root cause"), max_length=10_000, required=False, widget=forms.Textarea(attrs={"rows": 3}))
    capa = forms.CharField(label=_("CAPA (corrective and preventive actions)"), max_length=10_000, required=False,
                           widget=forms.Textarea(attrs={"rows": 3}))
    reason = forms.CharField(label=_("Reason for this change"), max_length=2000,
                             widget=forms.TextInput(attrs={"placeholder": _("e.g. investigation completed")}))
    expected_version = forms.IntegerField(min_value=1, max_value=2**31, widget=forms.HiddenInput)


# --- master batch records --------------------------------------------------------------------------


class MbrHeaderForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=200)
    change_summary = forms.CharField(label=_("Change summary"), max_length=5000, required=False, widget=forms.Textarea(attrs={"rows": 3}))
    reason = forms.CharField(label=_("Reason"), max_length=2000, required=False, initial="draft edit")
    expected_revision = forms.IntegerField(min_value=1, max_value=2**31, widget=forms.HiddenInput)


class MbrCloneForm(forms.Form):
    change_summary = forms.CharField(label=_("What will change in the new version"), max_length=5000,
                                     widget=forms.Textarea(attrs={"rows": 2}))


class StageForm(forms.Form):
    code = forms.SlugField(label=_("Code"), max_length=40)
    name = forms.CharField(label=_("Name"), max_length=200)
    expected_revision = forms.IntegerField(min_value=1, max_value=2**31, widget=forms.HiddenInput)


class StepDefinitionForm(forms.Form):
    code = forms.CharField(label=_("Code"), max_length=60, help_text=_("Unique in the record; calculations refer to steps by code."))
    title = forms.CharField(label=_("Title"), max_length=200)
    kind = forms.ChoiceField(label=_("Kind"), choices=translated_choices(StepKind.choices))
    instruction = forms.CharField(label=_("Instruction"), max_length=5000, required=False, widget=forms.Textarea(attrs={"rows": 3}))
    unit = forms.CharField(label=_("Unit"), max_length=40, required=False)
    decimal_places = forms.IntegerField(label=_("Decimal places"), min_value=0, max_value=6, initial=0)
    alert_min = forms.CharField(label=_("Alert min"), max_length=40, required=False)
    alert_max = forms.CharField(label=_("Alert max"), max_length=40, required=False)
    action_min = forms.CharField(label=_("Action min"), max_length=40, required=False)
    action_max = forms.CharField(label=_("Action max"), max_length=40, required=False)
    material_type = forms.CharField(label=_("Material type"), max_length=60, required=False)
    quantity = forms.CharField(label=_("Quantity"), max_length=20, required=False)
    equipment_type = forms.CharField(label=_("Equipment type"), max_length=60, required=False)
    calculation = forms.ChoiceField(label=_("Calculation"), required=False, choices=[("", "—"), *((k, c.label) for k, c in REGISTRY.items())])
    calculation_inputs = forms.CharField(label=_("Calculation inputs"),
        max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text=_("One input per line: <code>input = source</code>, e.g. <code>volume_ml = step:vector_volume_ml</code>, "
                    "<code>titer_tu_per_ml = lot:vector_lot:titer</code>, <code>weight_kg = patient:weight_kg</code>."))
    container_type = forms.ChoiceField(label=_("Container type"), required=False, choices=[("", "—"), *translated_choices(ContainerType.choices)])
    sample_tests = forms.CharField(label=_("Sample tests"), max_length=1000, required=False, help_text=_("QC test codes, separated by commas."))
    critical = forms.BooleanField(label=_("Critical"), required=False, help_text=_("Out of action limits puts the batch on hold."))
    requires_verification = forms.BooleanField(label=_("Requires verification"), required=False, help_text=_("A second person verifies."))
    repeatable = forms.BooleanField(label=_("Repeatable"), required=False, help_text=_("Recorded once per occurrence (e.g. daily counts)."))
    allow_out_of_order = forms.BooleanField(label=_("Allow out of order"), required=False)
    reason = forms.CharField(label=_("Reason for the change"), max_length=2000, required=False)
    expected_revision = forms.IntegerField(min_value=1, max_value=2**31, widget=forms.HiddenInput)

    LIMIT_FIELDS = STEP_LIMIT_FIELDS

    def clean_calculation_inputs(self) -> dict:
        text = self.cleaned_data.get("calculation_inputs") or ""
        out = {}
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            name, sep, source = line.partition("=")
            if not sep or not name.strip() or not source.strip():
                raise forms.ValidationError(_("Line %(number)s: write it as “input = source”."),
                                            params={"number": number})
            out[name.strip()] = source.strip()
        return out

    def clean_sample_tests(self) -> list[str]:
        return [t.strip() for t in (self.cleaned_data.get("sample_tests") or "").split(",") if t.strip()]

    def step_values(self) -> dict:
        data = dict(self.cleaned_data)
        data.pop("reason", None)
        data.pop("expected_revision", None)
        return data

    @staticmethod
    def initial_for(step) -> dict:
        initial = {name: getattr(step, name) for name in (
            "code", "title", "kind", "instruction", "unit", "decimal_places", "material_type", "equipment_type",
            "calculation", "container_type", "critical", "requires_verification", "repeatable", "allow_out_of_order")}
        for name in (*STEP_LIMIT_FIELDS, "quantity"):
            value = getattr(step, name)
            initial[name] = "" if value is None else f"{value.normalize():f}"
        initial["calculation_inputs"] = "\n".join(f"{k} = {v}" for k, v in step.calculation_inputs.items())
        initial["sample_tests"] = ", ".join(step.sample_tests)
        return initial


# --- lots and equipment ----------------------------------------------------------------------------


class LotForm(forms.Form):
    material_type = forms.CharField(label=_("Material type"), max_length=60, help_text=_("As named in the recipe, e.g. transact, lentiviral_vector."))
    name = forms.CharField(label=_("Name"), max_length=200)
    lot_number = forms.CharField(label=_("Lot number"), max_length=64)
    barcode = forms.CharField(label=_("Barcode"), max_length=200, help_text=_("What scanning the lot label gives."),
                              widget=forms.TextInput(attrs={"class": "scan", "autocomplete": "off"}))
    expiry_date = forms.DateField(label=_("Expiry date"), widget=forms.DateInput(attrs={"type": "date"}))
    titer_tu_per_ml = forms.CharField(label=_("Titer (TU/mL, vectors only)"), max_length=40, required=False)


class LotRejectForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=2000)
    password = password_field()
    expected_version = forms.IntegerField(min_value=1, max_value=2**31, widget=forms.HiddenInput)


class EquipmentForm(forms.Form):
    asset_id = forms.CharField(label=_("Asset id"), max_length=64, widget=forms.TextInput(attrs={"class": "scan", "autocomplete": "off"}))
    equipment_type = forms.CharField(label=_("Equipment type"), max_length=60, help_text=_("As named in the recipe, e.g. cell_processor."))
    name = forms.CharField(label=_("Name"), max_length=200)
    status = forms.ChoiceField(label=_("Status"), choices=translated_choices(EquipmentStatus.choices), initial=EquipmentStatus.IN_SERVICE)
    calibration_due = forms.DateField(label=_("Calibration due"), widget=forms.DateInput(attrs={"type": "date"}))
    maintenance_due = forms.DateField(label=_("Maintenance due"), required=False, widget=forms.DateInput(attrs={"type": "date"}))


class EquipmentEditForm(EquipmentForm):
    reason = forms.CharField(label=_("Reason"), max_length=2000, help_text=_("e.g. calibrated, certificate CAL-2026-114"))
    expected_version = forms.IntegerField(min_value=1, max_value=2**31, widget=forms.HiddenInput)
