"""A domain error keeps one English text for the record and speaks the user's language."""

from django.utils import translation

from carmfg.exceptions import GMPError, InvalidInput
from carmfg.texts import Lowered, Text, shown


def test_message_is_english_and_text_follows_the_active_language():
    error = GMPError()

    with translation.override("ru"):
        assert error.message == "The action was refused."
        assert error.text == "Действие отклонено."
    with translation.override("en"):
        assert error.text == "The action was refused."


def test_values_are_filled_in_both_the_record_and_the_translation():
    # A template that the Russian catalogue translates, with its placeholder kept.
    error = InvalidInput("You are now working at %(site)s.", params={"site": "Moscow"})

    assert error.message == "You are now working at Moscow."
    assert str(error) == "You are now working at Moscow."
    with translation.override("ru"):
        assert error.text == "Теперь вы работаете на площадке Moscow."


def test_a_message_without_values_may_contain_a_per_cent_sign():
    assert InvalidInput("CAR+ must be between 0 and 100 %.").message == "CAR+ must be between 0 and 100 %."


def test_an_untranslated_message_is_shown_in_english():
    error = InvalidInput("Nobody translated %(what)s.", params={"what": "this"})

    with translation.override("ru"):
        assert error.text == "Nobody translated this."


def test_a_value_that_is_a_sentence_of_its_own_is_translated_with_the_message():
    inner = Text("Refused")
    error = InvalidInput("You are now working at %(site)s.", params={"site": inner})

    assert error.message == "You are now working at Refused."
    with translation.override("ru"):
        assert error.text == "Теперь вы работаете на площадке Отклонено."


class _Note:
    """Not a sentence of ours: something else that happens to have a ``text`` (a comment, a note)."""

    text = "Refused"

    def __str__(self) -> str:
        return "note 7"


def test_only_a_text_is_translated_as_a_value_anything_else_with_a_text_attribute_is_shown_as_it_is():
    note = _Note()
    error = InvalidInput("You are now working at %(site)s.", params={"site": note})

    assert error.message == "You are now working at note 7."
    with translation.override("ru"):
        assert shown(note) is note
        assert shown(Text("Refused")) == "Отклонено"
        assert error.text == "Теперь вы работаете на площадке note 7."


def test_a_text_is_english_as_a_string_and_translated_as_text():
    sentence = Text("You are now working at %(site)s.", {"site": Text("Refused")})

    assert sentence == sentence.message == "You are now working at Refused."
    assert type(sentence.message) is str
    with translation.override("ru"):
        assert sentence.text == "Теперь вы работаете на площадке Отклонено."


def test_a_lowered_choice_label_keeps_the_capitals_of_its_translation_after_the_first_letter():
    status = Lowered("Phase I: laboratory error check")

    assert status.message == "phase i: laboratory error check"  # the English record, as always
    with translation.override("ru"):
        assert status.text == "фаза I: проверка на лабораторную ошибку"
