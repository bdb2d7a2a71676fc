from django.contrib import admin
from django.urls import include, path

from apps.accounts import views as accounts_views
from apps.accounts.roles import may_use_admin

admin.site.site_header = "jitportal administration"
admin.site.site_title = "jitportal"
admin.site.index_title = "Access requests, grants and the audit trail"
# The admin checks the portal role itself (from the settings), not only the staff flag.
admin.site.has_permission = may_use_admin  # type: ignore[method-assign]

urlpatterns = [
    # No password form: Pomerium already said who this is.
    path("admin/login/", accounts_views.admin_login, name="admin_login"),
    path("admin/logout/", accounts_views.sign_out),
    path("admin/", admin.site.urls),
    path("signout", accounts_views.sign_out, name="sign_out"),
    path("audit/", include("apps.audit.urls")),
    path("reviews/", include("apps.reviews.urls")),
    path("api/", include("apps.api.urls")),
    path("slack/", include("apps.slack.urls")),
    path("", include("apps.access.urls")),
]

handler403 = "apps.access.errors.forbidden"
handler404 = "apps.access.errors.not_found"
handler500 = "apps.access.errors.server_error"
