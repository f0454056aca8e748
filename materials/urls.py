"""Routes of the materials library and of the signed links Kinovi fetches."""

from django.urls import path

from materials import views

urlpatterns = [
    path("materials/", views.library, name="materials"),
    path("materials/upload/", views.upload, name="material_upload"),
    path("materials/<uuid:public_id>/delete/", views.delete, name="material_delete"),
    path("materials/<uuid:public_id>/thumbnail/", views.thumbnail, name="material_thumbnail"),
    path("videos/<uuid:public_id>/continue/", views.continue_shot, name="generation_continue"),
    # A signed, time-limited link (links.py); the name only tells a downloader the file type.
    path("m/<str:token>/<str:name>", views.signed_file, name="material_file"),
]
