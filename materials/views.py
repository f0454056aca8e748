"""The materials pages: the library (members add and delete, viewers look), thumbnails for the
picker, and the signed links Kinovi downloads from (with HTTP Range)."""

from urllib.parse import urlencode

from django.contrib import messages
from django.http import FileResponse, Http404, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from accounts.access import get_for_member, workspace_required
from generations.models import Generation
from materials import links, rules, services
from materials.models import Material
from mediakit.http import ranged_response


@require_GET
@workspace_required()
def library(request):
    materials = Material.objects.filter(workspace=request.workspace).prefetch_related("uses")
    return render(
        request,
        "materials/library.html",
        {"materials": materials, "can_add": request.membership.can_generate},
    )


def _too_big(request) -> bool:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0) > rules.MAX_UPLOAD_BYTES
    except ValueError:
        return True


def _answer(request, *, status: int, message: str, material=None):
    """JSON for the picker's fetch, a message and a redirect for the plain form."""
    if request.headers.get("Accept", "").startswith("application/json"):
        data = {"message": message}
        if material is not None:
            data["material"] = material.as_card()
        return JsonResponse(data, status=status)
    (messages.success if status < 400 else messages.error)(request, message)
    return redirect("materials")


@csrf_exempt  # checked below, after the size: the CSRF check would read the body first
@require_POST
@workspace_required("can_generate")
def upload(request):
    # Refused on the declared length before anything of the body is read or stored.
    if _too_big(request):
        return _answer(
            request, status=413, message="The file is larger than 50 MB, more than Kinovi takes."
        )
    refused = CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {})
    if refused is not None:
        return refused
    uploaded = request.FILES.get("file")
    if uploaded is None:
        return _answer(request, status=400, message="Choose a file to upload.")
    try:
        material, created = services.upload(membership=request.membership, uploaded=uploaded)
    except services.MaterialRefused as refused_file:
        return _answer(request, status=400, message=refused_file.message)
    message = (
        f"Added {material.name}." if created else f"{material.name} is already in the library."
    )
    return _answer(request, status=201 if created else 200, message=message, material=material)


@require_POST
@workspace_required("can_generate")
def delete(request, public_id):
    material = get_for_member(request, Material, "can_generate", public_id=public_id)
    try:
        services.delete(membership=request.membership, material=material)
    except services.MaterialRefused as refused:
        messages.error(request, refused.message)
    else:
        messages.success(request, f"Deleted {material.name}.")
    return redirect("materials")


@require_GET
@workspace_required()
def thumbnail(request, public_id):
    material = get_for_member(request, Material, public_id=public_id)
    if not material.thumbnail:
        raise Http404
    response = FileResponse(material.thumbnail.open("rb"), content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@require_GET
def signed_file(request, token, name):
    """The file a signed link names; 404 for anything else (forged, expired, other workspace)."""
    material = links.material_for(token)
    if material is None or name != f"{material.kind}.{material.format}":
        raise Http404
    try:
        size = material.file.size
    except FileNotFoundError:  # lost from storage: Kinovi is told as for any unknown link
        raise Http404 from None
    response = ranged_response(request, material.file.open("rb"), size, material.content_type)
    response["Cache-Control"] = "private, no-store"
    response["X-Robots-Tag"] = "noindex"
    return response


@require_POST
@workspace_required("can_generate")
def continue_shot(request, public_id):
    """ "Continue this shot": the video's last frame becomes the first frame of a new one,
    whose form opens pre-filled from this video (its parent)."""
    generation = get_for_member(request, Generation, "can_generate", public_id=public_id)
    try:
        material = services.continue_from(membership=request.membership, generation=generation)
    except services.MaterialRefused as refused:
        messages.error(request, refused.message)
        return redirect("generation_detail", public_id=generation.public_id)
    query = urlencode(
        {"remix": generation.public_id, "first_frame": material.public_id.hex, "mode": "keyframe"}
    )
    return redirect(f"{reverse('generation_new')}?{query}")
