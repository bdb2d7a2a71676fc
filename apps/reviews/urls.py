from django.urls import path

from . import views

app_name = "reviews"

urlpatterns = [
    path("", views.mine, name="mine"),
    path("items/<int:pk>/decide", views.decide, name="decide"),
    path("keep", views.keep_selected, name="keep_selected"),
]
