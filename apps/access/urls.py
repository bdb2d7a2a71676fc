from django.urls import path

from . import new_request, views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("status", views.dashboard_status, name="dashboard_status"),
    path("requests/new", new_request.request_new, name="request_new"),
    path("requests/<int:pk>", views.request_detail, name="request_detail"),
    path("requests/<int:pk>/status", views.request_status, name="request_status"),
    path("requests/<int:pk>/cancel", views.request_cancel, name="request_cancel"),
    path("requests/<int:pk>/end", views.request_end_access, name="request_end"),
    path("break-glass/<slug:slug>", views.break_glass, name="break_glass"),
    path("preferences", views.preferences, name="preferences"),
]
