"""The materials app: a workspace's library of images, videos and audio for Kinovi to use."""

from django.apps import AppConfig


class MaterialsConfig(AppConfig):
    name = "materials"
    verbose_name = "Materials"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The seam generations offers (generations/inputs.py): generations never imports this
        # app, it asks the provider registered here. Imported here, not at module top, because
        # Django's app registry must be ready first (the one place the ruff rule allows it).
        from generations import inputs
        from materials.provider import MaterialProvider

        inputs.register(MaterialProvider())
