from django.conf import settings
from django.http import HttpRequest

from .roles import AUDITOR, holds
from .timezones import zone_for, zone_label, zone_source


def portal(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)
    return {
        "sign_out_url": "/signout",
        "is_auditor": bool(
            user is not None
            and user.is_authenticated
            and (
                user.is_superuser
                # What the export page asks (apps/audit/views.may_export), role first: the
                # role is read from the person's groups, the permission takes a query that
                # every page of someone who is no auditor would pay for nothing.
                or (holds(user, AUDITOR) and user.has_perm("audit.export_auditevent"))
            )
        ),
        "portal_url": settings.PORTAL_URL,
        # The zone every time on the page is in, and where it came from (the zone script).
        "time_zone": zone_label(zone_for(request)),
        "time_zone_source": zone_source(request),
    }
