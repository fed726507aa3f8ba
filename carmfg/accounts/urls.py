from django.contrib.auth import views as auth_views
from django.urls import path

from carmfg.accounts import views

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/", views.PasswordChangeView.as_view(), name="password_change"),
    path("profile/", views.profile, name="profile"),
    path("site/", views.site_switch, name="site_switch"),
    path("sites/<int:pk>/", views.site_detail, name="site_detail"),
    path("tokens/", views.api_tokens, name="api_tokens"),
    path("tokens/<str:token_key>/revoke/", views.api_token_revoke_view, name="api_token_revoke"),
]
