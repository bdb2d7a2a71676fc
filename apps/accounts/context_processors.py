from django.conf import settings
from django.http import HttpRequest


def portal(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)
    return {
        "sign_out_url": "/signout",
        "is_auditor": bool(
            user is not None
            and user.is_authenticated
            and (user.is_superuser or user.has_perm("audit.export_auditevent"))
        ),
        "portal_url": settings.PORTAL_URL,
    }
