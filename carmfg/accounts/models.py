from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _
from knox.models import AbstractAuthToken


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("%(value)s is not a known IANA time zone (e.g. Europe/Moscow)."),
                              params={"value": repr(value)})


class Role(models.TextChoices):
    TECHNICIAN = "technician", gettext_noop("Technician")
    VERIFIER = "verifier", gettext_noop("Verifier")
    QC_ANALYST = "qc_analyst", gettext_noop("QC analyst")
    QUALIFIED_PERSON = "qualified_person", gettext_noop("Qualified person")
    COORDINATOR = "coordinator", gettext_noop("Coordinator")
    AUDITOR = "auditor", gettext_noop("Auditor")
    SITE_ADMIN = "site_admin", gettext_noop("Site administrator")


class Site(models.Model):
    """A hospital's GMP manufacturing unit. Every GMP record belongs to exactly one."""

    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    facility_identification_number = models.CharField(
        "ISBT 128 facility identification number (FIN)",
        max_length=5,
        unique=True,
        validators=[RegexValidator(r"^[A-Z][A-Z0-9]{4}$", "A FIN is a capital letter and four letters or digits.")],
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        # Site-level object permissions, granted per user through guardian by role.
        permissions = [
            ("access_site", "Can see the site's records"),
            ("execute_steps", "Can execute manufacturing steps"),
            ("verify_steps", "Can verify steps as second person"),
            ("enter_qc_results", "Can enter and review QC results"),
            ("certify_batches", "Can certify batches as qualified person"),
            ("manage_patients", "Can register patients, orders and infusions"),
            ("view_audit_trail", "Can read and export the audit trail"),
            ("administer_site", "Can manage users, equipment, lots and master batch records"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


class Membership(models.Model):
    """A user's roles at one site. Guardian permissions on the site follow from it."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="memberships")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="memberships")
    # Roles are Django groups named after ``Role`` values; the grant is per site.
    roles = models.ManyToManyField(Group, related_name="memberships", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "site"], name="one_membership_per_user_and_site")]
        ordering = ["site__name"]

    def __str__(self) -> str:
        return f"{self.user} @ {self.site}"

    @property
    def role_names(self) -> list[str]:
        return sorted(group.name for group in self.roles.all())

    @property
    def role_labels(self) -> list[str]:
        # Labels stay English in the code (gettext_noop) and are translated only here, for display.
        return [gettext(Role(r).label) for r in self.role_names if r in Role.values]


class ApiToken(AbstractAuthToken):
    """A personal token for an integration (EHR, LIMS, an auditor's script).

    Only the SHA-512 digest is stored (django-rest-knox); the token itself is shown
    once, at creation. The token acts as its owner, with the owner's roles at each site.
    """

    name = models.CharField(max_length=100, help_text="What the token is for, e.g. 'LIMS import'")

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.name} ({self.token_key}…)"


class Profile(models.Model):
    """A user's own preferences, kept on the server so they follow the user to any workstation."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    # Blank: the browser's language (Accept-Language), falling back to LANGUAGE_CODE.
    language = models.CharField(_("language"), max_length=8, choices=settings.LANGUAGES, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"profile of {self.user}"
