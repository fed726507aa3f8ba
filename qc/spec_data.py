"""The ARI-0001-like release specification shipped with carmfg (Hospital Clínic,
hospital exemption, published figures). Sites make their own versions from it."""

from __future__ import annotations

from decimal import Decimal

ARI_0001_LIKE = {
    "title": "Anti-CD19 CAR-T release specification (ARI-0001-like)",
    "dose_min_cells_per_kg": Decimal("400000"),
    "dose_max_cells_per_kg": Decimal("5000000"),
    "dose_tolerance_percent": Decimal("20"),
    "tests": [
        # code, name, method, unit, limit type, low, high, passing, decimals, provisional?, turnaround, sample
        ("viability", "Viability", "Flow cytometry (7-AAD)", "% of nucleated cells", "gte", "70", None, "", 1, True, 0, "final product"),
        ("cd3", "CD3+ T cells", "Flow cytometry", "% of viable cells", "gte", "70", None, "", 1, True, 0, "final product"),
        ("car_pos", "CAR+ cells", "Flow cytometry (CD19-Fc)", "% of CD3+", "gte", "20", None, "", 1, True, 1, "final product"),
        ("endotoxin", "Endotoxin", "LAL kinetic chromogenic", "EU/mL", "lte", None, "0.5", "", 2, True, 0, "final product"),
        ("gram", "Gram stain", "Microscopy", "", "qualitative", None, None, "conforms", 0, True, 0, "final product"),
        ("mycoplasma", "Mycoplasma", "qPCR", "", "qualitative", None, None, "not_detected", 0, True, 1, "final product"),
        ("sterility", "Sterility", "Ph. Eur. 2.6.27 automated culture", "", "qualitative", None, None, "no_growth", 0, False, 14, "final product"),
        ("vcn", "Vector copy number", "ddPCR", "copies/transduced cell", "lte", None, "10", "", 2, False, 7, "final product"),
        ("ifng", "IFN-γ release (potency)", "ELISA after CD19+ co-culture", "pg/mL", "report", None, None, "", 0, False, 7, "final product"),
    ],
}


# A failing microbial safety result opens a critical deviation; any other failing result a major one.
CRITICAL_OOS_TESTS = frozenset({"sterility", "mycoplasma", "endotoxin"})


def definition_rows(data: dict = ARI_0001_LIKE) -> list[dict]:
    rows = []
    for order, (code, name, method, unit, limit, low, high, passing, decimals, provisional, days, sample) in enumerate(
        data["tests"], start=1
    ):
        rows.append({
            "order": order, "code": code, "name": name, "method": method, "unit": unit, "limit_type": limit,
            "low": Decimal(low) if low is not None else None, "high": Decimal(high) if high is not None else None,
            "passing_result": passing, "decimal_places": decimals, "required_for_provisional": provisional,
            "turnaround_days": days, "sample_type": sample,
            "oos_deviation_class": "critical" if code in CRITICAL_OOS_TESTS else "major",
        })
    return rows
