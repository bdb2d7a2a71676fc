"""The JSON API at ``/api/v1/``: what the pages do, for terminals, scripts and bots.

Library: django-ninja (pinned in ``constraints.txt``). It fits this codebase better than
DRF + drf-spectacular: views stay plain functions that call our services (we use none
of DRF's serializers-as-models, viewsets, routers or its own auth and permission
layers, which would duplicate the assertion middleware and the services' rules), the
request and response shapes are typed pydantic schemas that mypy checks, and the OpenAPI
document is generated from those same types, so it cannot drift from the code. One
well-kept dependency (plus pydantic) instead of two.

Design, in short (``docs/api.md`` has the whole contract):

* Identity is the assertion middleware's: the same verified ``X-Pomerium-Jwt-Assertion``
  and the same roles as the pages. A CLI sends ``Authorization: Pomerium <jwt>`` to
  Pomerium, which forwards the assertion.
* Every write calls the same service as its page twin (``apps.access.services``) and is
  audited by it, with ``channel: "api"`` in the details (``middleware``).
* CSRF: see ``middleware``. Errors: ``{"error": {"code", "message", "fields"?}}``.
"""
