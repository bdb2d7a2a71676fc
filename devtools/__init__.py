"""Development tools that never ship: the Zero simulator, the dev sign-in proxy, the demo's
seed data and supervisor, and the ``run_demo``, ``seed_demo`` and ``zero_simulator`` commands.

Outside the product package on purpose. Settings install this app only with ``DEBUG`` on, the
image leaves the directory out (``.dockerignore``), and import-linter keeps every product module
from importing it. It sits on top of the layers: it may use any app, no app may use it.
"""
