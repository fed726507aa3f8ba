from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from carmfg.accounts.middleware import LANGUAGE_SESSION_KEY, SESSION_KEY
from carmfg.accounts.selectors import (
    membership_for,
    membership_list_for_site,
    profile_language_get,
    site_get_for_user,
)
from carmfg.accounts.services import profile_language_set
from carmfg.accounts.tokens import api_token_create, api_token_list_for_user, api_token_revoke
from carmfg.audit.models import Action
from carmfg.audit.services import audit_record
from carmfg.exceptions import GMPError


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = True


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"

    def form_valid(self, form):
        response = super().form_valid(form)
        user = form.user  # the authenticated user whose password changed
        audit_record(actor=user, action=Action.UPDATE, obj=user,
                     object_repr=user.get_username(), changes={"password": "changed"},
                     reason="Password changed by its owner")
        messages.success(self.request, gettext("Your password was changed."))
        return response

    def get_success_url(self):
        return "/"


@login_required
@require_POST
def site_switch(request: HttpRequest) -> HttpResponse:
    try:
        pk = int(request.POST.get("site", ""))
    except ValueError:
        pk = -1
    site = site_get_for_user(request.user, pk)
    request.session[SESSION_KEY] = site.pk
    audit_record(actor=request.user, action=Action.SITE_SWITCH, obj=site, site=site, changes={"site": site.code})
    messages.info(request, gettext("You are now working at %(site)s.") % {"site": site.name})
    target = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        target = "/"
    return redirect(target)


@login_required
def site_detail(request: HttpRequest, pk: int) -> HttpResponse:
    site = site_get_for_user(request.user, pk)
    return render(
        request,
        "accounts/site_detail.html",
        {"site": site, "memberships": membership_list_for_site(request.user, site),
         "my_membership": membership_for(request.user, site)},
    )


class LanguageForm(forms.Form):
    # Each language is named in itself (settings.LANGUAGES), so anyone can find their own.
    language = forms.ChoiceField(
        label=_("Language"),
        required=False,
        choices=[("", _("As my browser asks")), *settings.LANGUAGES],
        help_text=_("The language of your pages and of documents made for you."),
    )


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    form = LanguageForm(request.POST or None, initial={"language": profile_language_get(request.user)})
    if request.method == "POST" and form.is_valid():
        language = form.cleaned_data["language"]
        try:
            profile_language_set(actor=request.user, language=language)
        except GMPError as exc:
            form.add_error("language", exc.text)
        else:
            if language:
                request.session[LANGUAGE_SESSION_KEY] = language
            else:
                request.session.pop(LANGUAGE_SESSION_KEY, None)
            translation.activate(language or translation.get_language_from_request(request))
            response = redirect("profile")
            if language:
                response.set_cookie(settings.LANGUAGE_COOKIE_NAME, language, samesite="Lax", httponly=True,
                                    secure=settings.SESSION_COOKIE_SECURE, max_age=365 * 24 * 3600)
            else:
                response.delete_cookie(settings.LANGUAGE_COOKIE_NAME)
            messages.success(request, gettext("Your language was saved."))
            return response
    return render(request, "accounts/profile.html", {"form": form})


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, label=_("What is it for?"), help_text=_("e.g. LIMS result import"))
    days = forms.IntegerField(min_value=1, max_value=366, initial=90, label=_("Valid for (days)"))


@login_required
def api_tokens(request: HttpRequest) -> HttpResponse:
    created_token = None
    form = ApiTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            token, created_token = api_token_create(
                actor=request.user, name=form.cleaned_data["name"], days=form.cleaned_data["days"]
            )
        except GMPError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.text)
        else:
            messages.success(
                request, gettext("Token “%(name)s” created. Copy it now: it is shown only once.") % {"name": token.name}
            )
            form = ApiTokenForm()
    return render(
        request, "accounts/api_tokens.html",
        {"form": form, "tokens": api_token_list_for_user(request.user), "created_token": created_token},
    )


@login_required
@require_POST
def api_token_revoke_view(request: HttpRequest, token_key: str) -> HttpResponse:
    api_token_revoke(actor=request.user, token_key=token_key)
    messages.success(request, gettext("The token was revoked; integrations using it are refused from now on."))
    return redirect("api_tokens")
