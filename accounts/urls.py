from django.urls import path

from accounts import views

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("login/", views.EmailLoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("account/", views.account_settings, name="account_settings"),
    path("account/password/", views.PasswordChangeView.as_view(), name="password_change"),
    path("password-reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path(
        "password-reset/sent/",
        views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "password-reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("workspaces/", views.workspaces, name="workspaces"),
    path("workspaces/switch/", views.switch, name="switch_workspace"),
    path("workspaces/<int:workspace_id>/", views.team, name="team"),
    path("workspaces/<int:workspace_id>/invite/", views.invite, name="invite"),
    path(
        "workspaces/<int:workspace_id>/invitations/<int:invitation_id>/revoke/",
        views.revoke_invitation,
        name="revoke_invitation",
    ),
    path(
        "workspaces/<int:workspace_id>/members/<int:membership_id>/role/",
        views.change_role,
        name="change_role",
    ),
    path(
        "workspaces/<int:workspace_id>/members/<int:membership_id>/remove/",
        views.remove_member,
        name="remove_member",
    ),
    path("workspaces/<int:workspace_id>/leave/", views.leave, name="leave_workspace"),
    path("workspaces/<int:workspace_id>/rename/", views.rename, name="rename_workspace"),
    path("workspaces/<int:workspace_id>/delete/", views.delete_workspace, name="delete_workspace"),
    path("invitations/<str:token>/", views.accept_invitation, name="accept_invitation"),
    path("keys/", views.keys, name="keys"),
    path("keys/sandbox/", views.sandbox_key, name="sandbox_key"),
    path("keys/<int:key_id>/", views.edit_key, name="edit_key"),
    path("keys/<int:key_id>/default/", views.default_key, name="default_key"),
    path("keys/<int:key_id>/revoke/", views.revoke_key, name="revoke_key"),
    path("keys/<int:key_id>/check/", views.recheck_key, name="recheck_key"),
]
