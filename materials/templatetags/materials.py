"""{% material_picker %}: the new-video form's "Start from an image" and "References" sections,
drawn from the workspace's library (generations' templates load this; its code never imports
materials)."""

from django import template

from materials.models import GenerationMaterial, Material

register = template.Library()


def _chosen(data, name: str) -> list[str]:
    values = data.getlist(name) if hasattr(data, "getlist") else []
    return [v.replace("-", "").lower() for v in values if v]


@register.inclusion_tag("materials/_picker.html", takes_context=True)
def material_picker(context):
    request = context["request"]
    form = context.get("form")
    # A bound form's own fields, else the query string ("Continue this shot" names a frame).
    data = form.data if form is not None and form.is_bound else request.GET
    library = [m.as_card() for m in Material.objects.filter(workspace=request.workspace)]
    by_id = {item["id"]: item for item in library}

    def picked(name):
        return [by_id[i] for i in _chosen(data, name) if i in by_id]

    return {
        "library": library,
        "first_frame": picked("first_frame")[:1],
        "last_frame": picked("last_frame")[:1],
        "references": picked("references"),
        "can_add": getattr(request, "membership", None) is not None
        and request.membership.can_generate,
    }


@register.inclusion_tag("materials/_attached.html")
def attached_materials(generation):
    """The files a generation was made from, in the order they were sent."""
    return {
        "links": GenerationMaterial.objects.filter(generation=generation)
        .select_related("material")
        .order_by("position")
    }
