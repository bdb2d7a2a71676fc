"""The one-command demo: demo identities, the dev sign-in proxy and ``manage.py run_demo``.

Nothing in this app is used in production; the portal verifies the proxy's assertions
with exactly the code path it uses for real Pomerium.
"""
