from __future__ import annotations

from django.conf import settings
from django.utils import translation
from django.utils.functional import SimpleLazyObject

from carmfg.accounts.models import Site
from carmfg.accounts.selectors import site_list_for_user

SESSION_KEY = "carmfg_site_id"


def _current_site(request) -> Site | None:
    user = request.user
    if not user.is_authenticated:
        return None
    sites = list(site_list_for_user(user))
    if not sites:
        return None
    wanted = request.session.get(SESSION_KEY)
    for site in sites:
        if site.pk == wanted:
            return site
    return sites[0]


class CurrentSiteMiddleware:
    """``request.site``: the site the user works at now (chosen in the site switcher)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.site = SimpleLazyObject(lambda: _current_site(request))
        return self.get_response(request)


# The language chosen in the profile, copied into the session at login (and on change),
# so that applying it costs no query per request.
LANGUAGE_SESSION_KEY = "carmfg_language"


class UserLanguageMiddleware:
    """The language chosen in the user's profile wins over the browser's.

    Runs after ``LocaleMiddleware`` (which guessed from the cookie or Accept-Language).
    The language cookie follows the choice, so the login page after logging out speaks
    the user's language too.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        language = request.session.get(LANGUAGE_SESSION_KEY) if hasattr(request, "session") else None
        if language not in dict(settings.LANGUAGES):
            language = None
        if language:
            translation.activate(language)
            request.LANGUAGE_CODE = language
        response = self.get_response(request)
        if language and request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME) != language:
            response.set_cookie(
                settings.LANGUAGE_COOKIE_NAME,
                language,
                max_age=365 * 24 * 3600,
                samesite="Lax",
                secure=settings.SESSION_COOKIE_SECURE,
                httponly=True,
            )
        return response
