from django.urls import path, re_path

from .endpoints import api
from .views import not_found

urlpatterns = [
    path("v1/", api.urls),
    # Anything else under /api/ is a JSON 404, never the HTML page.
    re_path(r"^.*$", not_found),
]
