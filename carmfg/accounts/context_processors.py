from __future__ import annotations

from carmfg.accounts.selectors import membership_for, site_list_for_user


def site_context(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    site = request.site if getattr(request, "site", None) else None
    membership = membership_for(user, site) if site else None
    return {
        "current_site": site,
        "my_sites": list(site_list_for_user(user)),
        "my_roles": membership.role_names if membership else [],
        "my_role_labels": membership.role_labels if membership else [],
    }
