from django.urls import path

from . import views

app_name = "audit"

urlpatterns = [
    path("export", views.export_page, name="export"),
]
