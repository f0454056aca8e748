"""Admin pages for auditing credit use: generations, the ledger, webhooks, prices, the report.

Operators read here; they never edit money or status by hand. Generations, ledger rows and
webhook deliveries are read-only; a re-check or a "process again" goes through the same
services the product uses, and prices change by adding rows.
"""

import json
from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, Sum, Value
from django.db.models.functions import Coalesce
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from accounts.admin import ApiKeyAdmin, MembershipAdmin, ReadOnlyAdmin, WorkspaceAdmin
from accounts.models import ApiKey, Membership, Workspace, log_action
from generations import budget, reports, services
from generations.models import (
    IN_FLIGHT_STATUSES,
    LEDGER_DOLLARS,
    MONEY,
    BudgetWarning,
    CreditEntry,
    Generation,
    Heartbeat,
    Price,
    StatusEvent,
    WebhookDelivery,
)

# How far back a new price's valid-from may be: the form's default is "now" when it is
# opened, and filling it in takes a moment; anything older would rewrite history.
PRICE_BACKDATE_TOLERANCE = timedelta(minutes=10)


def csv_response(text: str, filename: str) -> HttpResponse:
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class StatusEventInline(ReadOnlyInline):
    model = StatusEvent
    fields = ["created_at", "from_status", "to_status", "source", "detail"]
    readonly_fields = fields


class CreditEntryInline(ReadOnlyInline):
    model = CreditEntry
    fields = ["created_at", "kind", "credits", "dollars_per_credit", "user", "api_key"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user", "api_key")


class WebhookDeliveryInline(ReadOnlyInline):
    model = WebhookDelivery
    fields = ["received_at", "outcome", "error", "remote_addr", "processed_at"]
    readonly_fields = fields
    show_change_link = True


class ResolveUnknownForm(forms.Form):
    task_id = forms.CharField(
        label="Task id at Kinovi",
        required=False,
        max_length=100,
        help_text="As shown on Kinovi's dashboard, e.g. task_abc123.",
    )
    never_created = forms.BooleanField(
        label="Kinovi has no such task",
        required=False,
        help_text="The video ends rejected and its reserve is refunded.",
    )

    def clean(self):
        data = super().clean()
        task_id = (data.get("task_id") or "").strip()
        if bool(task_id) == bool(data.get("never_created")):
            raise forms.ValidationError(
                "Give the task id from Kinovi, or tick that Kinovi has no such task (not both)."
            )
        data["task_id"] = task_id
        return data


class OperatorActionsMixin:
    """Operator actions need Django's change permission on the model, though the model's own
    fields stay read-only: acting through a service is not editing a row by hand."""

    def has_operate_permission(self, request):
        opts = self.model._meta
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")


@admin.register(Generation)
class GenerationAdmin(OperatorActionsMixin, ReadOnlyAdmin):
    list_display = [
        "short_id",
        "workspace",
        "creator",
        "model",
        "duration",
        "upscale_4k",
        "status",
        "estimated_credits",
        "charged",
        "created_at",
        "completed_at",
    ]
    list_filter = ["status", "model", "upscale_4k", "workspace", "created_at"]
    search_fields = ["prompt", "task_id", "creator__email", "=public_id"]
    date_hierarchy = "created_at"
    list_select_related = ["workspace", "creator", "api_key"]
    list_per_page = 50
    show_full_result_count = False
    inlines = [StatusEventInline, CreditEntryInline, WebhookDeliveryInline]
    actions = ["recheck", "export_csv"]
    # The callback token hash is deliberately absent: it is a credential's fingerprint.
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "public_id",
                    "workspace",
                    "creator",
                    "api_key_masked",
                    "status",
                    "task_id",
                ]
            },
        ),
        (
            "Request",
            {
                "fields": [
                    "model",
                    "prompt",
                    "duration",
                    "aspect_ratio",
                    "mode",
                    "upscale_4k",
                    "parent",
                    "batch_id",
                ]
            },
        ),
        (
            "Credits",
            {"fields": ["estimated_credits", "dollars_per_credit", "credits_used", "charged"]},
        ),
        (
            "Outcome",
            {
                "fields": [
                    "video_url",
                    "width",
                    "height",
                    "last_frame_url",
                    "seed",
                    "error_code",
                    "error_message",
                    "error_detail",
                ]
            },
        ),
        (
            "Times",
            {
                "fields": [
                    "created_at",
                    "submitted_at",
                    "started_at",
                    "completed_at",
                    "confirmed_at",
                    "finished_email_sent_at",
                    "next_poll_at",
                    "poll_count",
                    "submit_attempts",
                    "hidden",
                ]
            },
        ),
    ]
    readonly_fields = ["public_id", "api_key_masked", "charged"]

    @admin.display(description="id", ordering="public_id")
    def short_id(self, obj):
        return str(obj.public_id)[:8]

    @admin.display(description="charged credits")
    def charged(self, obj):
        return obj.charged_credits

    @admin.display(description="API key")
    def api_key_masked(self, obj):
        return f"{obj.api_key.label} ({obj.api_key.masked})"

    @admin.action(description="Re-check with Kinovi now", permissions=["operate"])
    def recheck(self, request, queryset):
        done = 0
        for generation in queryset:
            try:
                services.recheck(generation=generation, source="operator")
            except services.ActionRefused as refused:
                self.message_user(
                    request, f"{str(generation.public_id)[:8]}: {refused}", messages.WARNING
                )
                continue
            log_action(
                actor=request.user,
                action="generation.rechecked",
                workspace=generation.workspace,
                target=generation.public_id,
            )
            done += 1
        if done:
            self.message_user(request, f"Asked Kinovi again about {done} generation(s).")

    @admin.action(description="Export selected as CSV")
    def export_csv(self, request, queryset):
        return csv_response(reports.generations_csv(queryset), "generations.csv")

    # --- resolving an unknown outcome -----------------------------------------------------

    def get_urls(self):
        return [
            path(
                "<int:object_id>/resolve/",
                self.admin_site.admin_view(self.resolve_view),
                name="generations_generation_resolve",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_resolve": self.has_operate_permission(request),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def resolve_view(self, request, object_id):
        if not self.has_operate_permission(request):
            raise PermissionDenied("Resolving a generation needs the change permission.")
        generation = self.get_object(request, str(object_id))
        if generation is None:
            raise Http404("No such generation.")
        form = ResolveUnknownForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            task_id = form.cleaned_data["task_id"] or None
            try:
                services.resolve_unknown(generation=generation, task_id=task_id)
            except services.ActionRefused as refused:
                form.add_error(None, str(refused))
            else:
                log_action(
                    actor=request.user,
                    action="generation.resolved",
                    workspace=generation.workspace,
                    target=generation.public_id,
                    task_id=task_id or "",
                    never_created=task_id is None,
                )
                self.message_user(request, "The unknown outcome is resolved.")
                return redirect("admin:generations_generation_change", generation.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Resolve an unknown outcome",
            "generation": generation,
            "form": form,
        }
        return TemplateResponse(
            request,
            "admin/generations/generation/resolve.html",
            context,
            status=400 if form.errors else 200,
        )


@admin.register(CreditEntry)
class CreditEntryAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "kind",
        "credits",
        "dollars",
        "workspace",
        "user",
        "key",
        "model",
        "generation_link",
    ]
    list_filter = ["kind", "workspace", "user", "api_key", "model", "created_at"]
    search_fields = ["generation__task_id", "user__email", "=generation__public_id"]
    date_hierarchy = "created_at"
    list_select_related = ["workspace", "user", "api_key", "generation"]
    list_per_page = 100
    show_full_result_count = False
    change_list_template = "admin/generations/creditentry/change_list.html"
    readonly_fields = ["dollars"]

    @admin.display(description="dollars")
    def dollars(self, obj):
        return obj.dollars

    @admin.display(description="key", ordering="api_key__label")
    def key(self, obj):
        return f"{obj.api_key.label} ({obj.api_key.masked})"

    @admin.display(description="generation", ordering="generation_id")
    def generation_link(self, obj):
        url = reverse("admin:generations_generation_change", args=[obj.generation_id])
        return format_html('<a href="{}">{}</a>', url, str(obj.generation.public_id)[:8])

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None)
        if context and "cl" in context:
            # One aggregate over exactly the rows the filters selected.
            totals = (
                context["cl"]
                .queryset.order_by()
                .aggregate(
                    total_credits=Coalesce(Sum("credits"), Value(0)),
                    total_dollars=Coalesce(Sum(LEDGER_DOLLARS), Value(0), output_field=MONEY),
                )
            )
            context["ledger_totals"] = {
                "credits": totals["total_credits"],
                "dollars": totals["total_dollars"],
                "dollars_text": reports.format_dollars(totals["total_dollars"]),
            }
        return response

    # --- the credit usage report ----------------------------------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("report/", view(self.report_view), name="generations_credit_report"),
            path(
                "report/csv/<str:table>/",
                view(self.report_csv_view),
                name="generations_credit_report_csv",
            ),
            *super().get_urls(),
        ]

    def _check_report_permission(self, request):
        if not request.user.has_perm("generations.view_creditentry"):
            raise PermissionDenied("You need permission to view the credit ledger.")

    def report_view(self, request):
        self._check_report_permission(request)
        error, report = None, None
        try:
            period = reports.parse_period(request.GET)
        except reports.ReportError as refused:
            error, period = str(refused), reports.this_month()
        else:
            report = reports.build_report(period)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Credit usage report",
            "period": period,
            "error": error,
            "report": report,
            "table_titles": reports.TABLE_TITLES,
            "reconciliation_titles": reports.RECONCILIATION_TITLES,
            "list_limit": reports.LIST_LIMIT,
            "time_zone": settings.TIME_ZONE,
        }
        return TemplateResponse(
            request,
            "admin/generations/creditentry/report.html",
            context,
            status=400 if error else 200,
        )

    def report_csv_view(self, request, table):
        self._check_report_permission(request)
        try:
            period = reports.parse_period(request.GET)
            text = reports.table_csv(period, table)
        except reports.ReportError as refused:
            return HttpResponse(str(refused), status=400, content_type="text/plain; charset=utf-8")
        filename = f"credits-{table}-{period.start}-{period.end}.csv"
        return csv_response(text, filename)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(OperatorActionsMixin, ReadOnlyAdmin):
    list_display = ["received_at", "generation", "outcome", "error", "remote_addr", "processed_at"]
    list_filter = ["outcome", "received_at"]
    search_fields = ["=generation__public_id", "generation__task_id", "body"]
    date_hierarchy = "received_at"
    list_select_related = ["generation"]
    show_full_result_count = False
    fields = [
        "generation",
        "received_at",
        "remote_addr",
        "outcome",
        "error",
        "processed_at",
        "headers_pretty",
        "body_raw",
        "body_truncated",
    ]
    readonly_fields = ["headers_pretty", "body_raw"]
    actions = ["process_again"]

    @admin.display(description="headers")
    def headers_pretty(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.headers, indent=2, sort_keys=True))

    @admin.display(description="body (raw)")
    def body_raw(self, obj):
        return format_html("<pre>{}</pre>", obj.body)

    @admin.action(description="Process again (confirm with Kinovi)", permissions=["operate"])
    def process_again(self, request, queryset):
        done = 0
        for delivery in queryset.select_related("generation"):
            try:
                services.reprocess_delivery(delivery)
            except services.ActionRefused as refused:
                self.message_user(request, f"Delivery {delivery.pk}: {refused}", messages.WARNING)
                continue
            log_action(
                actor=request.user,
                action="webhook.reprocessed",
                workspace=delivery.generation.workspace if delivery.generation else None,
                target=f"delivery {delivery.pk}",
            )
            done += 1
        if done:
            self.message_user(request, f"Sent {done} delivery(ies) through confirmation again.")


class PriceForm(forms.ModelForm):
    class Meta:
        model = Price
        fields = [
            "model",
            "output_resolution",
            "credits_per_second",
            "upscale_4k_credits_per_second",
            "reference_video_credits_per_second",
            "dollars_per_credit",
            "valid_from",
        ]

    def clean_valid_from(self):
        valid_from = self.cleaned_data["valid_from"]
        if valid_from < timezone.now() - PRICE_BACKDATE_TOLERANCE:
            raise forms.ValidationError(
                "A price cannot start in the past: generations already priced keep their "
                "estimate, so a change must start now or later."
            )
        return valid_from

    def clean_dollars_per_credit(self):
        value = self.cleaned_data["dollars_per_credit"]
        if value <= 0:
            raise forms.ValidationError("The dollar price of a credit must be above zero.")
        return value


@admin.register(Price)
class PriceAdmin(admin.ModelAdmin):
    """Superusers add prices; a row that has started applying is history and stays as it is."""

    form = PriceForm
    list_display = [
        "model",
        "output_resolution",
        "credits_per_second",
        "upscale_4k_credits_per_second",
        "reference_video_credits_per_second",
        "dollars_per_credit",
        "valid_from",
        "in_effect",
        "created_at",
    ]
    list_filter = ["model", "output_resolution"]
    ordering = ["model", "output_resolution", "-valid_from"]

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        if not (request.user.is_active and request.user.is_superuser):
            return False
        return obj is None or obj.valid_from > timezone.now()

    def has_delete_permission(self, request, obj=None):
        return self.has_change_permission(request, obj) and obj is not None

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    @admin.display(description="started applying", boolean=True)
    def in_effect(self, obj):
        return obj.valid_from <= timezone.now()

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        log_action(
            actor=request.user,
            action="price.changed" if change else "price.added",
            target=obj,
            model=obj.model,
            output_resolution=obj.output_resolution,
            credits_per_second=obj.credits_per_second,
            upscale_4k_credits_per_second=obj.upscale_4k_credits_per_second,
            reference_video_credits_per_second=obj.reference_video_credits_per_second,
            dollars_per_credit=str(obj.dollars_per_credit),
            valid_from=obj.valid_from.isoformat(),
            changed_fields=form.changed_data if change else [],
        )

    def delete_model(self, request, obj):
        log_action(
            actor=request.user,
            action="price.deleted",
            target=obj,
            model=obj.model,
            valid_from=obj.valid_from.isoformat(),
        )
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        # Bulk deletion would bypass the "only rows not yet applying" rule and the log.
        for obj in queryset:
            if not self.has_delete_permission(request, obj):
                raise PermissionDenied("A price that has started applying cannot be deleted.")
            self.delete_model(request, obj)


@admin.register(BudgetWarning)
class BudgetWarningAdmin(ReadOnlyAdmin):
    list_display = ["sent_at", "workspace", "month", "threshold", "used_credits", "budget_credits"]
    list_filter = ["threshold", "month"]
    list_select_related = ["workspace"]


@admin.register(Heartbeat)
class HeartbeatAdmin(ReadOnlyAdmin):
    """The background loops' last beats, so an operator can see whether polling is alive."""

    list_display = ["name", "beat_at", "age", "count", "detail", "lease_until"]

    @admin.display(description="seconds since")
    def age(self, obj):
        if obj.beat_at is None:
            return None
        return int((timezone.now() - obj.beat_at).total_seconds())


# --- the accounts' admins, with what generations add to them ------------------------------------
# Budgets, caps and keys' work in flight belong to this app; accounts' admin classes know
# nothing of them, so they are extended here and registered in their place.

admin.site.unregister(Workspace)
admin.site.unregister(Membership)
admin.site.unregister(ApiKey)


@admin.register(Workspace)
class WorkspaceBudgetAdmin(WorkspaceAdmin):
    def save_model(self, request, obj, form, change):
        if "monthly_budget_credits" in form.changed_data:
            budget.update_budget(
                actor=request.user, workspace=obj, monthly_budget_credits=obj.monthly_budget_credits
            )
        super().save_model(request, obj, form, change)


@admin.register(Membership)
class MembershipCapAdmin(MembershipAdmin):
    def save_model(self, request, obj, form, change):
        if "monthly_cap_credits" in form.changed_data:
            budget.update_budget(
                actor=request.user,
                workspace=obj.workspace,
                member_caps={obj.pk: obj.monthly_cap_credits},
            )


@admin.register(ApiKey)
class ApiKeyInFlightAdmin(ApiKeyAdmin):
    def get_queryset(self, request):
        in_flight = Q(generations__status__in=list(IN_FLIGHT_STATUSES))
        return (
            super()
            .get_queryset(request)
            .annotate(_in_flight=Count("generations", filter=in_flight))
        )
