from django.http import HttpRequest, HttpResponse

from .middleware import error_response


def not_found(request: HttpRequest) -> HttpResponse:
    return error_response(404, "not_found", "There is nothing at this address.")
