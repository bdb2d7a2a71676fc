"""On call from PagerDuty and Opsgenie: the adapters behind ``apps.access.oncall``.

Each provider is one module speaking its REST API with ``requests``; ``OncallConfig``
registers them with the domain's port when the app loads. Answers are cached per schedule
for at most ``ONCALL_CACHE_SECONDS`` (≤ 60); failures are never cached and never match.
"""
