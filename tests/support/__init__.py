"""The test-support library: code shared by the tests and by the scripts in ``bench/``.

Nothing here is a test. The modules the bench scripts import are part of this library's
interface and keep their names and signatures (``bench/*.py`` import them directly):

* ``jwks``: a loopback JWKS server and a minter of Pomerium-style assertions
  (``bench/web.py``, ``bench/identity.py``, ``bench/admin_profile.py``, ``bench/reveal_pages.py``);
* ``tls``: a per-run certificate authority and a localhost certificate (``bench/audit_stream.py``);
* ``processes``: spare loopback ports and ``manage.py`` in a subprocess (``bench/web.py``);
* ``celery_worker``: a real Celery worker subprocess, a ``DATABASE_URL`` for a Django
  connection, emptying a Redis broker (``bench/zero_sync.py``, ``bench/core_deadlines.py``,
  ``bench/drift_repair.py``, ``bench/audit_stream.py``).

Used by the tests only:

* ``people``: the shared people fixtures (``alice``, ``bob``, ``erin``), imported by
  ``tests/conftest.py``;
* ``hidden_text``: the hidden and direction-changing characters a test should try.
"""
