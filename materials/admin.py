"""Materials in the admin: read-only evidence of what was uploaded and what used it."""

from django.contrib import admin

from materials.models import GenerationMaterial, Material


@admin.register(Material)
class MaterialAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "format", "bytes", "duration", "workspace", "created_at"]
    list_filter = ["kind"]
    list_select_related = ["workspace"]
    search_fields = ["name", "sha256"]
    readonly_fields = [f.name for f in Material._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(GenerationMaterial)
class GenerationMaterialAdmin(admin.ModelAdmin):
    list_display = ["generation", "role", "position", "material"]
    list_select_related = ["generation", "material"]
    readonly_fields = ["generation", "material", "role", "position"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
