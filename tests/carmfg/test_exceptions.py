"""A domain error keeps one English text for the record and speaks the user's language."""

from django.utils import translation

from carmfg.exceptions import GMPError, InvalidInput


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
    from batches.exceptions import Phrase

    inner = Phrase("Refused")
    error = InvalidInput("You are now working at %(site)s.", params={"site": inner})

    assert error.message == "You are now working at Refused."
    with translation.override("ru"):
        assert error.text == "Теперь вы работаете на площадке Отклонено."
