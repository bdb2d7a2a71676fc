"""The demo's "Slack" page: the channels' messages with their buttons, as one person sees them.

Pick who you are (``?as=U…``); a button is a form that makes the stand-in send the signed
click to the portal, exactly as Slack would. A dialog the portal opened for you shows up
with its input; your ephemeral replies are listed under the channel. Every value is
escaped; the page runs no script.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .simulator import SlackSimulator

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 52rem; margin: 1.5rem auto; padding: 0 1rem; }
.banner { background: #4a154b; color: #fff; padding: .5rem 1rem; font-weight: bold; }
.msg { border: 1px solid #ddd; border-radius: .4rem; padding: .6rem 1rem; margin: .6rem 0; }
.msg pre { white-space: pre-wrap; font-family: inherit; margin: .3rem 0; }
.eph { background: #f4f4f4; border-left: 4px solid #888; padding: .4rem .8rem; margin: .4rem 0; }
.dialog { border: 2px solid #4a154b; padding: .8rem 1rem; margin: 1rem 0; }
.err { color: #b00020; }
form.inline { display: inline; }
button { font-size: .95rem; padding: .3rem .9rem; margin-right: .4rem; cursor: pointer; }
button.primary { background: #007a5a; color: #fff; border: 0; }
button.danger { background: #e01e5a; color: #fff; border: 0; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _mrkdwn(text: str) -> str:
    # Enough of mrkdwn for the demo: *bold* stays as it is, escaped entities are shown.
    return _e(html.unescape(text))


def render(sim: SlackSimulator, viewer: str) -> str:
    ws = sim.workspace
    state = ws.snapshot()
    parts = [
        '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        "<title>Slack (stand-in)</title>",
        f"<style>{_STYLE}</style></head><body>",
        '<div class="banner">Slack stand-in: NOT Slack. Clicks are signed and sent to the '
        "portal exactly as Slack sends them.</div>",
        '<form method="get" action="/"><label>You are: <select name="as">',
    ]
    for person in ws.people.values():
        selected = " selected" if person.id == viewer else ""
        parts.append(
            f'<option value="{_e(person.id)}"{selected}>'
            f"{_e(person.name)} ({_e(person.email)})</option>"
        )
    parts.append('</select></label> <button type="submit">Switch</button></form>')
    if not viewer:
        parts.append("<p>Pick who you are to use the buttons.</p>")
    for view in state["views"]:
        if view["user"] != viewer or view["closed"]:
            continue
        parts.append(_dialog(sim, view, viewer))
    for channel_id, channel in ws.channels.items():
        parts.append(f"<h2>#{_e(channel['name'])}</h2>")
        for message in state["messages"]:
            if message["channel"] == channel_id:
                parts.append(_message(sim, message, viewer))
        for eph in state["ephemerals"]:
            if eph["user"] == viewer and eph["channel"] == channel_id:
                parts.append(
                    '<div class="eph"><small>Only visible to you</small><br>'
                    f"{_e(eph['text'])}</div>"
                )
    parts.append("</body></html>")
    return "\n".join(parts)


def _message(sim: SlackSimulator, message: dict[str, Any], viewer: str) -> str:
    out = [f'<div class="msg" data-ts="{_e(message["ts"])}">']
    for block in message["blocks"] or [{"type": "section", "text": {"text": message["text"]}}]:
        if block.get("type") == "section":
            out.append(f"<pre>{_mrkdwn(block.get('text', {}).get('text', ''))}</pre>")
        elif block.get("type") == "actions":
            for element in block.get("elements", []):
                label = _e(element.get("text", {}).get("text", ""))
                if "url" in element:
                    out.append(f'<a href="{_e(element["url"])}">{label}</a> ')
                    continue
                if not viewer:
                    out.append(f"<button disabled>{label}</button>")
                    continue
                out.append(
                    '<form class="inline" method="post" action="/_ui/click">'
                    f'<input type="hidden" name="ui_token" value="{_e(sim.ui_token)}">'
                    f'<input type="hidden" name="as" value="{_e(viewer)}">'
                    f'<input type="hidden" name="channel" value="{_e(message["channel"])}">'
                    f'<input type="hidden" name="ts" value="{_e(message["ts"])}">'
                    f'<input type="hidden" name="action_id" value="{_e(element.get("action_id"))}">'
                    f'<button type="submit" class="{_e(element.get("style", ""))}">{label}</button>'
                    "</form>"
                )
    if message["edited"]:
        out.append("<small>(edited)</small>")
    out.append("</div>")
    return "".join(out)


def _dialog(sim: SlackSimulator, view: dict[str, Any], viewer: str) -> str:
    spec = view["view"]
    out = [
        '<div class="dialog">',
        f"<h3>{_e(spec.get('title', {}).get('text', ''))}</h3>",
        '<form method="post" action="/_ui/submit">',
        f'<input type="hidden" name="ui_token" value="{_e(sim.ui_token)}">',
        f'<input type="hidden" name="as" value="{_e(viewer)}">',
        f'<input type="hidden" name="view_id" value="{_e(view["id"])}">',
    ]
    for block in spec.get("blocks", []):
        if block.get("type") == "section":
            out.append(f"<p>{_mrkdwn(block.get('text', {}).get('text', ''))}</p>")
        elif block.get("type") == "input":
            block_id = block["block_id"]
            out.append(
                f"<label>{_e(block['label']['text'])}<br>"
                f'<textarea name="input:{_e(block_id)}" rows="3" cols="60"></textarea></label>'
            )
            if block_id in view["errors"]:
                out.append(f'<p class="err">{_e(view["errors"][block_id])}</p>')
    submit = spec.get("submit", {}).get("text", "Submit")
    out.append(f'<p><button type="submit">{_e(submit)}</button></p></form></div>')
    return "".join(out)
