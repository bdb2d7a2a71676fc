"""The few HTML pages the dev sign-in proxy serves itself (no templates: it runs without Django).

Every dynamic value is escaped; the proxy sends them with a CSP that allows no script.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

from devtools.demo.identities import DemoIdentity

BANNER = "DEV SIGN-IN PROXY — NOT FOR PRODUCTION — plays Pomerium for the demo"
SIGN_IN_PATH = "/.pomerium/sign_in"
SIGN_OUT_PATH = "/.pomerium/sign_out"

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; }
.banner { background: #b00020; color: #fff; padding: .6rem 1rem; font-weight: bold; }
.who { display: flex; justify-content: space-between; align-items: center; gap: 1rem;
       border: 1px solid #ccc; border-radius: .4rem; padding: .6rem 1rem; margin: .5rem 0; }
.who small { color: #555; }
button { font-size: 1rem; padding: .4rem 1rem; cursor: pointer; }
"""


def page(title: str, body_html: str) -> str:
    """A whole page; ``body_html`` must already be escaped."""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{_STYLE}</style></head>\n"
        f'<body><div class="banner">{html.escape(BANNER)}</div>\n'
        f"<h1>{html.escape(title)}</h1>\n{body_html}\n</body></html>\n"
    )


def sign_in_page(
    identities: Iterable[DemoIdentity],
    *,
    csrf_token: str,
    next_path: str,
    current: DemoIdentity | None,
) -> str:
    """One POST form per identity, each carrying the anti-CSRF token and the next path."""
    parts = []
    if current is not None:
        parts.append(
            f"<p>Signed in as <strong>{html.escape(current.name)}</strong> "
            f'({html.escape(current.email)}). <a href="{SIGN_OUT_PATH}">Sign out</a></p>'
        )
    parts.append("<p>Pick who you are. The portal receives a signed Pomerium assertion.</p>")
    for identity in identities:
        groups = ", ".join(identity.groups) or "no groups"
        parts.append(
            f'<form class="who" method="post" action="{SIGN_IN_PATH}">'
            f"<div><strong>{html.escape(identity.name)}</strong> "
            f"&lt;{html.escape(identity.email)}&gt;<br>"
            f"<small>{html.escape(identity.role_blurb)} · groups: {html.escape(groups)}</small>"
            "</div>"
            f'<input type="hidden" name="csrf_token" value="{html.escape(csrf_token)}">'
            f'<input type="hidden" name="identity" value="{html.escape(identity.key)}">'
            f'<input type="hidden" name="next" value="{html.escape(next_path)}">'
            f'<button type="submit" data-identity="{html.escape(identity.key)}">'
            f"Sign in as {html.escape(identity.name.split()[0])}</button></form>"
        )
    return page("Sign in to the jitportal demo", "\n".join(parts))


def refused_page(reason: str) -> str:
    return page(
        "Sign-in refused",
        f'<p>{html.escape(reason)} <a href="{SIGN_IN_PATH}">Back to sign-in</a>.</p>',
    )


def portal_down_page(upstream: str) -> str:
    return page(
        "The portal is not up yet",
        "<p>The portal is not up yet (or it just stopped): nothing answered at "
        f"<code>{html.escape(upstream)}</code>.</p>"
        "<p>If the demo is starting, wait a few seconds and reload.</p>",
    )
