from django.conf import settings
from django.contrib import auth
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from .roles import may_use_admin


@require_http_methods(["GET", "POST"])
def sign_out(request: HttpRequest) -> HttpResponse:
    """End the portal session, then Pomerium's (the one that matters).

    Only a POST (with its CSRF token) signs out; a GET shows the button, so a link or an
    image on another page cannot sign anyone out.
    """
    if request.method != "POST":
        return render(request, "accounts/sign_out.html")
    auth.logout(request)
    return HttpResponseRedirect(settings.POMERIUM_SIGN_OUT_URL)


def admin_login(request: HttpRequest) -> HttpResponse:
    """Replaces the admin's password form: Pomerium already said who this is."""
    if request.user.is_authenticated and may_use_admin(request):
        target = request.GET.get("next", "/admin/")
        if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
            target = "/admin/"
        return HttpResponseRedirect(target)
    return render(request, "accounts/not_staff.html", status=403)
