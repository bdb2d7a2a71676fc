"""Reading the stand-in's state in tests."""

from __future__ import annotations

from typing import Any

from devtools.slacksim.simulator import SlackSimulator


def messages(sim: SlackSimulator) -> list[dict[str, Any]]:
    return sim.workspace.snapshot()["messages"]


def only_message(sim: SlackSimulator) -> dict[str, Any]:
    found = messages(sim)
    assert len(found) == 1, found
    return found[0]


def text_of(message: dict[str, Any]) -> str:
    return "\n".join(b["text"]["text"] for b in message["blocks"] if b["type"] == "section")


def buttons(message: dict[str, Any]) -> list[str]:
    return [
        e.get("action_id", "")
        for b in message["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if "url" not in e
    ]


def ephemerals(sim: SlackSimulator, user: str) -> list[str]:
    return [e["text"] for e in sim.workspace.snapshot()["ephemerals"] if e["user"] == user]


def methods(sim: SlackSimulator) -> list[str]:
    return [c["method"] for c in sim.workspace.snapshot()["calls"]]
