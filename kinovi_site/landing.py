"""`/`: the landing page for visitors, the gallery for everyone signed in.

Here rather than in either app: the site decides what its front door is; accounts and
generations stay unaware of each other's views.
"""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from generations.views.gallery import home as gallery


def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return gallery(request)
    return render(request, "accounts/landing.html")
