from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_noop


class RegulatoryPathway(models.TextChoices):
    """The legal route a product is made under; it decides the release model and the
    wording of certificates. Nothing about one country's rules is hard-coded."""

    HOSPITAL_EXEMPTION = "hospital_exemption", gettext_noop("Hospital exemption")
    BIOMEDICAL_CELL_PRODUCT = "biomedical_cell_product", gettext_noop("Individualised biomedical cell product")
    COMPOUNDING = "compounding", gettext_noop("Compounding (extemporaneous)")
    CLINICAL_TRIAL = "clinical_trial", gettext_noop("Investigational product (clinical trial)")
    REGISTERED = "registered", gettext_noop("Registered medicinal product")


class ReleaseModel(models.TextChoices):
    TWO_STAGE = "two_stage", gettext_noop("Two-stage (provisional, then final)")
    SINGLE = "single", gettext_noop("Single certification")


class Product(models.Model):
    site = models.ForeignKey("accounts.Site", on_delete=models.PROTECT, related_name="products")
    code = models.SlugField(max_length=40)
    name = models.CharField(max_length=200)
    pathway = models.CharField(max_length=40, choices=RegulatoryPathway.choices)
    release_model = models.CharField(max_length=20, choices=ReleaseModel.choices, default=ReleaseModel.TWO_STAGE)
    provisional_certificate_title = models.CharField(max_length=200, default="Provisional (conditional) certification")
    final_certificate_title = models.CharField(max_length=200, default="Final certification")
    # ISBT 128 product description code printed on labels (e.g. a local code for CAR-T).
    product_code = models.CharField(max_length=20, blank=True)
    fraction_percents = models.JSONField(default=list, blank=True, help_text="Split dosing, e.g. [10, 30, 60]")

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["site", "code"], name="product_code_unique_per_site")]

    def __str__(self) -> str:
        return self.name
