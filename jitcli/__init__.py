"""``jit``: jitportal from a terminal — request access, wait until it is live, decide, revoke.

A separate top-level package (not under ``apps/``) on purpose: it imports nothing from the
portal or Django, only the standard library and ``requests`` (a test enforces this), so it
could ship as its own small package. It is installed with the portal as the ``jit``
console script (``[project.scripts]`` in ``pyproject.toml``).
"""

__version__ = "0.2.0"
