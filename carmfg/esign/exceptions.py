from django.utils.translation import gettext_noop

from carmfg.exceptions import GMPError


class SignatureRefused(GMPError):
    status_code = 403
    default_message = gettext_noop("The signature was refused: the password is not correct.")


class SegregationOfDuties(GMPError):
    status_code = 403
    default_message = gettext_noop(
        "You may not sign this record with this meaning: you already signed it in another role."
    )


class AlreadySigned(GMPError):
    status_code = 409
    default_message = gettext_noop("This record already carries a valid signature with this meaning.")
