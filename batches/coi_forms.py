"""Forms of the chain-of-identity pages. They only parse input: every rule is checked
again by the services. Dates and times are typed in the site's time zone (the view
activates it) and stored in UTC."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from django import forms
from django.utils.translation import gettext_lazy as _

from batches.models import ContainerType, DeviationClass, Product
from carmfg.choices import translated_choices
from carmfg.textinput import REASON_MAX_LENGTH

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

DATETIME_FORMAT = "%Y-%m-%dT%H:%M"
# A scanner sends at most a few dozen characters; more is kept for the service to refuse
# (and audit) as an unreadable scan, far more is refused here as a form error.
SCAN_MAX_LENGTH = 1000

SCAN_ATTRS = {
    "autocomplete": "off", "autocapitalize": "off", "spellcheck": "false", "class": "scan-input",
    "inputmode": "text",
}


def chain_enter(form: forms.Form, names: list[str]) -> None:
    """Enter in each of ``names`` moves to the next one (see scan.js); the last submits."""
    for name, following in zip(names, names[1:], strict=False):
        if name in form.fields and following in form.fields:
            form.fields[name].widget.attrs["data-enter-next"] = form[following].auto_id


def _date_input():
    return forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def _datetime_field(label: StrOrPromise, **kwargs) -> forms.DateTimeField:
    return forms.DateTimeField(
        label=label, input_formats=[DATETIME_FORMAT, "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_FORMAT), **kwargs,
    )


class ChangeForm(forms.Form):
    """What every change of an existing record adds: why, and which version it changes."""

    reason = forms.CharField(label=_("Reason for the change"), max_length=REASON_MAX_LENGTH,
                             widget=forms.Textarea(attrs={"rows": 2}),
                             help_text=_("Kept in the audit trail with the old and new values."))
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=0)


class PatientForm(forms.Form):
    initials = forms.CharField(label=_("Initials"), max_length=4, help_text=_("As printed on the labels, e.g. A.B."))
    birth_year = forms.IntegerField(label=_("Birth year"), min_value=1900, max_value=2100)
    hospital_record_number = forms.CharField(label=_("Hospital record number"), max_length=64, help_text=_("Seen by coordinators only."))
    wristband_code = forms.CharField(label=_("Wristband code"),
        max_length=64, help_text=_("What the patient's wristband barcode carries: scan it here."),
        widget=forms.TextInput(attrs=SCAN_ATTRS),
    )
    weight_kg = forms.DecimalField(label=_("Weight (kg)"), max_digits=5, decimal_places=1, min_value=0)
    weight_measured_on = forms.DateField(label=_("Weight measured on"), widget=_date_input())


class PatientEditForm(PatientForm, ChangeForm):
    pass


class OrderForm(forms.Form):
    product = forms.ModelChoiceField(queryset=Product.objects.none(), empty_label=None)
    indication = forms.CharField(label=_("Indication"), max_length=200)
    treating_physician = forms.CharField(label=_("Treating physician"), max_length=200)
    physician_email = forms.EmailField(label=_("Physician email"), required=False, max_length=254,
                                       help_text=_("Told first of a late failing QC result."))
    target_dose_cells_per_kg = forms.DecimalField(
        label=_("Target dose (CAR+ cells per kg)"), max_digits=20, decimal_places=0, min_value=1,
        help_text=_("e.g. 1000000 or 1e6"),
    )
    planned_collection_date = forms.DateField(label=_("Planned collection date"), widget=_date_input())
    planned_infusion_date = forms.DateField(label=_("Planned infusion date"), required=False, widget=_date_input())

    def __init__(self, *args, products, **kwargs):
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["product"]).queryset = products


class OrderEditForm(OrderForm, ChangeForm):
    pass


class CollectionForm(forms.Form):
    collection_date = forms.DateField(label=_("Day of apheresis"), widget=_date_input())


class LabelPrintForm(forms.Form):
    container_type = forms.ChoiceField(label=_("Container type"), choices=translated_choices(ContainerType.choices))
    quantity = forms.IntegerField(label=_("Quantity"), min_value=1, max_value=24, initial=1,
                                  help_text=_("Final product bags: one label per fraction, whatever the quantity."))
    expires_at = _datetime_field(_("Product expiry (final product bags)"), required=False)


class LabelDestroyForm(forms.Form):
    reason = forms.CharField(label=_("Why is the label destroyed?"), max_length=REASON_MAX_LENGTH,
                             widget=forms.Textarea(attrs={"rows": 2}))


class CustodyScanForm(forms.Form):
    temperature_c = forms.DecimalField(label=_("Temperature (°C)"), max_digits=5, decimal_places=1, required=False)
    location = forms.CharField(label=_("Location"), max_length=200, help_text=_("Room, fridge or ward"))
    scanned_code = forms.CharField(
        label=_("Scan the label"), max_length=SCAN_MAX_LENGTH, strip=False,
        widget=forms.TextInput(attrs={**SCAN_ATTRS, "autofocus": True}),
        help_text=_("Scan the square DataMatrix code: the scanner presses Enter for you."),
    )

    def __init__(self, *args, asks_temperature: bool, **kwargs):
        super().__init__(*args, **kwargs)
        if asks_temperature:
            self.fields["temperature_c"].required = True
            # Read the temperature first: the scan, last, submits the form.
            self.fields["scanned_code"].widget.attrs.pop("autofocus", None)
            self.fields["temperature_c"].widget.attrs["autofocus"] = True
        else:
            del self.fields["temperature_c"]
        chain_enter(self, ["temperature_c", "location", "scanned_code"])


YES_NO = [("yes", _("Yes, intact")), ("no", _("No: damaged or leaking"))]


class IntakeValuesForm(forms.Form):
    """The measured values of an apheresis intake, as recorded and as corrected."""

    collection_started_at = _datetime_field(_("Collection started"))
    collection_ended_at = _datetime_field(_("Collection ended"))
    received_at = _datetime_field(_("Received here"))
    transport_temperature_c = forms.DecimalField(label=_("Transport temperature (°C)"), max_digits=5, decimal_places=1)
    volume_ml = forms.DecimalField(label=_("Volume (mL)"), max_digits=7, decimal_places=1, min_value=0)
    wbc_10e3_per_ul = forms.DecimalField(label=_("WBC (×10³/µL)"), max_digits=7, decimal_places=2, min_value=0)
    cd3_cells_total = forms.DecimalField(label=_("CD3+ cells (total)"), max_digits=20, decimal_places=0, min_value=0,
                                         help_text=_("e.g. 3200000000 or 3.2e9"))
    bag_intact = forms.TypedChoiceField(label=_("Bag intact?"), choices=YES_NO, coerce=lambda v: v == "yes",
                                        widget=forms.RadioSelect)


class IntakeForm(IntakeValuesForm):
    label_scanned_code = forms.CharField(label=_("Scan the bag label"), max_length=SCAN_MAX_LENGTH, strip=False,
                                         widget=forms.TextInput(attrs=SCAN_ATTRS),
                                         help_text=_("Must be this donation's apheresis bag (AB-n)."))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        chain_enter(self, list(self.fields))


class IntakeCorrectionForm(IntakeValuesForm):
    """The intake's measured values, shown as recorded; what is changed is corrected. The
    bag's label scan (identity) is not on this form: it cannot be corrected."""

    reason = forms.CharField(max_length=REASON_MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 3}),
                             label=_("Reason for the correction"),
                             help_text=_("e.g. “typing error: 5.0 °C written as 50 °C”. Kept with the old and new "
                                         "values."))
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
                               max_length=4096, strip=False, label=_("Your password (signature)"))
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=0)


class IntakeDecisionForm(forms.Form):
    decision = forms.ChoiceField(label=_("Decision"), choices=[("accept_with_deviation", _("Accept with deviation")), ("reject", _("Reject"))],
                                 widget=forms.RadioSelect)
    classification = forms.ChoiceField(choices=translated_choices(DeviationClass.choices), initial=DeviationClass.MAJOR,
                                       label=_("Deviation class (if accepted)"))
    reason = forms.CharField(max_length=REASON_MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 3}),
                             label=_("Reason for the decision"))
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
                               max_length=4096, strip=False, label=_("Your password (signature)"))
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=0)


class InfusionForm(forms.Form):
    fraction_number = forms.TypedChoiceField(coerce=int, label=_("Fraction"))
    infused_at = _datetime_field(_("Infusion started"))
    bag_scanned_code = forms.CharField(label=_("1. Scan the product bag"), max_length=SCAN_MAX_LENGTH, strip=False,
                                       widget=forms.TextInput(attrs={**SCAN_ATTRS, "autofocus": True}),
                                       help_text=_("The square DataMatrix code on the bag's label (FP-n)."))
    wristband_scanned_code = forms.CharField(label=_("2. Scan the patient's wristband"), max_length=SCAN_MAX_LENGTH,
                                             strip=False, widget=forms.TextInput(attrs=SCAN_ATTRS),
                                             help_text=_("The scan moves on to your password."))
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
                               max_length=4096, strip=False, label=_("3. Your password (signature)"),
                               help_text=_("You sign the infusion as performed by you. Enter submits."))
    note = forms.CharField(label=_("Note"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, fractions: list[tuple[int, str]], **kwargs):
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["fraction_number"]).choices = fractions
        chain_enter(self, ["bag_scanned_code", "wristband_scanned_code", "password"])

