"""Admin pages for people, workspaces and keys, built for auditing: secrets never appear.

An API key is shown masked only; its ciphertext is excluded from every form, list and search.
Invitations never show their token hash. Roles change through the team pages (where the
last-owner rule lives); staff may edit budgets and caps here, and every such change is logged.
"""

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.db.models import Count

from accounts.models import (
    ApiKey,
    AuditEntry,
    Invitation,
    Membership,
    User,
    Workspace,
    log_action,
)
from accounts.services import create_user


class UserCreationAdminForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


class UserChangeAdminForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Django's user admin with the e-mail address as the login (the model has no username)."""

    form = UserChangeAdminForm
    add_form = UserCreationAdminForm
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("name",)}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "usable_password", "password1", "password2"),
            },
        ),
    )
    list_display = ("email", "name", "is_staff", "is_superuser", "is_active", "last_login")
    list_filter = ("is_staff", "is_superuser", "is_active", "groups")
    search_fields = ("email", "name")
    ordering = ("email",)
    readonly_fields = ("last_login", "date_joined")

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        # Every user comes with a personal workspace; the service makes both, then the
        # password hash the form computed (or an unusable one) is carried over.
        created = create_user(email=obj.email, password=None, name=obj.name)
        created.password = obj.password
        created.save(update_fields=["password"])
        obj.pk = created.pk
        obj._state.adding = False
        obj._state.db = created._state.db


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    fields = ["user", "role", "monthly_cap_credits", "created_at"]
    readonly_fields = ["user", "role", "monthly_cap_credits", "created_at"]
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ["name", "is_personal", "member_count", "monthly_budget_credits", "created_at"]
    list_filter = ["is_personal"]
    search_fields = ["name", "memberships__user__email"]
    fields = ["name", "is_personal", "monthly_budget_credits", "created_at"]
    readonly_fields = ["is_personal", "created_at"]
    inlines = [MembershipInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_members=Count("memberships"))

    @admin.display(description="members", ordering="_members")
    def member_count(self, obj):
        return obj._members

    def has_add_permission(self, request):
        # Workspaces are made by people (signup, "new team"), so each starts with an owner.
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        # The budget is saved by the generations app's admin (generations/admin.py), which
        # owns budgets and extends this class; here only what accounts own.
        if "name" in form.changed_data:
            old = Workspace.objects.get(pk=obj.pk).name
            obj.save(update_fields=["name"])
            log_action(
                actor=request.user,
                action="workspace.renamed",
                workspace=obj,
                target=obj.name,
                old_name=old,
                new_name=obj.name,
            )


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "workspace", "role", "monthly_cap_credits", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__email", "workspace__name"]
    list_select_related = ["user", "workspace"]
    fields = ["user", "workspace", "role", "monthly_cap_credits", "created_at"]
    readonly_fields = ["user", "workspace", "role", "created_at"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        """Caps are saved by the generations app's admin (generations/admin.py)."""


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "workspace", "role", "invited_by", "created_at", "expires_at", "state"]
    list_filter = ["role"]
    search_fields = ["email", "workspace__name"]
    list_select_related = ["workspace", "invited_by"]
    # The token hash stays out: with it, a leaked database page could be matched to a link.
    exclude = ["token_hash"]
    readonly_fields = [
        "workspace",
        "email",
        "role",
        "invited_by",
        "created_at",
        "expires_at",
        "accepted_at",
        "accepted_by",
        "revoked_at",
    ]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="state")
    def state(self, obj):
        if obj.accepted_at:
            return "accepted"
        if obj.revoked_at:
            return "revoked"
        return "pending" if obj.is_pending else "expired"


class ApiKeyAdminForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ["concurrency_limit"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys as operators need them: masked, with status, use and concurrency; never the secret."""

    form = ApiKeyAdminForm
    list_display = [
        "label",
        "workspace",
        "masked",
        "status",
        "is_default",
        "last_used_at",
        "in_flight",
        "concurrency_limit",
        "revoked_at",
    ]
    list_filter = ["status", "is_default", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["label", "workspace__name", "last_four"]
    list_select_related = ["workspace"]
    exclude = ["secret_ciphertext"]
    fields = [
        "label",
        "workspace",
        "masked",
        "status",
        "status_detail",
        "verified_at",
        "is_default",
        "last_used_at",
        "in_flight",
        "concurrency_limit",
        "created_by",
        "created_at",
        "revoked_at",
    ]
    readonly_fields = [
        "label",
        "workspace",
        "masked",
        "status",
        "status_detail",
        "verified_at",
        "is_default",
        "last_used_at",
        "in_flight",
        "created_by",
        "created_at",
        "revoked_at",
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("secret_ciphertext")

    @admin.display(description="key")
    def masked(self, obj):
        return obj.masked

    @admin.display(description="in flight", ordering="_in_flight")
    def in_flight(self, obj):
        return getattr(obj, "_in_flight", None)

    def has_add_permission(self, request):
        # A key is added through the product, which verifies it against Kinovi first.
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        old = ApiKey.objects.filter(pk=obj.pk).values_list("concurrency_limit", flat=True).first()
        obj.save(update_fields=["concurrency_limit"])
        log_action(
            actor=request.user,
            action="key.concurrency_changed",
            workspace=obj.workspace,
            target=f"{obj.label} ({obj.masked})",
            old_limit=old,
            new_limit=obj.concurrency_limit,
        )


class ReadOnlyAdmin(admin.ModelAdmin):
    """For records that are evidence (ledger, events, deliveries, audit): nobody edits them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """Who changed a role, a key, a budget or a price, and when. Read-only."""

    list_display = ["created_at", "actor", "workspace", "action", "target", "data"]
    list_filter = ["action", "created_at"]
    search_fields = ["action", "target", "actor__email", "workspace__name"]
    date_hierarchy = "created_at"
    list_select_related = ["actor", "workspace"]
    show_full_result_count = False
