"""A typed QC result that is not a number is refused naming the value in the reader's
language; the English message stays as it was (issue #11)."""

from __future__ import annotations

import pytest
from django.utils import translation

from carmfg.exceptions import InvalidInput
from qc.evaluation import parse_number


def test_a_result_that_is_not_a_number_names_the_value_in_russian_and_in_english():
    with pytest.raises(InvalidInput) as refused:
        parse_number("many")

    assert refused.value.message == "Value: 'many' is not a number (write e.g. 0.5, ≤0.5 or 1.2e9)."
    assert refused.value.field == "value"
    with translation.override("ru"):
        assert refused.value.text.startswith("Значение: 'many' ")
        assert "Value" not in refused.value.text
