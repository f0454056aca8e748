"""Pages for making and watching generations."""

from django.shortcuts import render

from accounts.access import workspace_required


@workspace_required()
def home(request):
    return render(request, "generations/home.html")
