"""What the materials app answers generations' seam (generations/inputs.py): which of the
workspace's files a form attaches, whether they go together, the attachment rows, and the
signed URLs createTask sends."""

from django.db.models import Case, IntegerField, When

from generations import inputs
from materials import links, rules
from materials.models import GenerationMaterial, Material

FIRST_FRAME, LAST_FRAME, REFERENCE = inputs.FIRST_FRAME, inputs.LAST_FRAME, inputs.REFERENCE
# The form's fields: a material's public id each (references: several, in order).
FIELDS = {FIRST_FRAME: "first_frame", LAST_FRAME: "last_frame", REFERENCE: "references"}
NOT_HERE = "An attached file is not in this workspace's library (was it deleted?)."


def _values(data, name: str) -> list[str]:
    if hasattr(data, "getlist"):
        values = data.getlist(name)
    else:
        value = data.get(name)
        values = value if isinstance(value, list) else [value]
    return [v.strip() for v in values if isinstance(v, str) and v.strip()]


def _in_order(ids: list[str], workspace_id: int) -> list[Material]:
    if len(set(ids)) != len(ids):
        raise inputs.MaterialsRefused("The same file is attached twice.")
    found = {
        m.public_id.hex: m
        for m in Material.objects.filter(workspace_id=workspace_id, public_id__in=_uuids(ids))
    }
    try:
        return [found[_hex(i)] for i in ids]
    except KeyError:
        raise inputs.MaterialsRefused(NOT_HERE) from None


def _hex(value: str) -> str:
    return value.replace("-", "").lower()


def _uuids(ids: list[str]) -> list[str]:
    good = [i for i in ids if len(_hex(i)) == 32 and all(c in "0123456789abcdef" for c in _hex(i))]
    if len(good) != len(ids):
        raise inputs.MaterialsRefused(NOT_HERE)
    return good


class MaterialProvider:
    """The InputProvider generations asks (registered in MaterialsConfig.ready)."""

    def parse(self, data, *, workspace_id: int) -> inputs.Selection:
        # Only the section of the chosen mode counts: switching modes keeps the other
        # section's choices on the page without sending them.
        if (data.get("mode") or "keyframe") == "reference":
            wanted = [(REFERENCE, v) for v in _values(data, FIELDS[REFERENCE])]
        else:
            wanted = [(FIRST_FRAME, v) for v in _values(data, FIELDS[FIRST_FRAME])[:1]]
            wanted += [(LAST_FRAME, v) for v in _values(data, FIELDS[LAST_FRAME])[:1]]
        materials = _in_order([v for _, v in wanted], workspace_id)
        return inputs.Selection(
            tuple(
                inputs.Item(ref=m.pk, kind=m.kind, role=role)
                for (role, _), m in zip(wanted, materials, strict=True)
            )
        )

    def check(self, selection: inputs.Selection, *, workspace_id: int) -> None:
        reason = links.unreachable_reason()
        if reason:
            raise inputs.MaterialsRefused(reason)
        materials = self._materials(selection)
        if any(m.workspace_id != workspace_id for m in materials):
            raise inputs.MaterialsRefused(NOT_HERE)
        try:
            rules.check_set([rules.Facts(m.kind, m.format, m.bytes, m.duration) for m in materials])
        except rules.Refused as refused:
            raise inputs.MaterialsRefused(str(refused)) from None

    def attach(self, generations: list, selection: inputs.Selection) -> None:
        GenerationMaterial.objects.bulk_create(
            GenerationMaterial(
                generation=generation, material_id=item.ref, role=item.role, position=position
            )
            for generation in generations
            for position, item in enumerate(selection.items)
        )

    def attached(self, generation) -> inputs.Selection:
        rows = GenerationMaterial.objects.filter(generation=generation).select_related("material")
        return inputs.Selection(
            tuple(
                inputs.Item(ref=row.material_id, kind=row.material.kind, role=row.role)
                for row in rows.order_by("position")
            )
        )

    def urls(self, selection: inputs.Selection) -> list[dict]:
        return [{"kind": m.kind, "url": links.link_for(m)} for m in self._materials(selection)]

    @staticmethod
    def _materials(selection: inputs.Selection) -> list[Material]:
        refs = [item.ref for item in selection.items]
        order = Case(
            *(When(pk=ref, then=i) for i, ref in enumerate(refs)), output_field=IntegerField()
        )
        materials = list(Material.objects.filter(pk__in=refs).order_by(order))
        if len(materials) != len(refs):
            raise inputs.MaterialsRefused(NOT_HERE)
        return materials
