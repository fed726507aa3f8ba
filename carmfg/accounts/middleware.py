from __future__ import annotations

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
