"""The checklist as CommonMark: `- [ ]` task items, one per step and host, commands in fenced blocks.

Meant to be read as plain text as much as rendered (GitHub, an editor's preview), so it avoids tables and
HTML. Task items are `[x]` only for what finished well; a failed host keeps `[ ]` and says FAILED, so a tick
never hides a failure.
"""

from __future__ import annotations

import re

from engine.checklist.filling import STATUS_LABELS, clock, confirmation_text, duration, tick, who
from engine.checklist.model import BLANK, Box, Checklist, Command, Item
from engine.history import Attempt
from engine.records import Confirmation

LINE = "________________"


def render(checklist: Checklist) -> str:
    parts = [*_head(checklist), *_warnings(checklist), *_before(checklist), "## Steps"]
    for item in checklist.steps:
        parts += _step(item, checklist.day)
    return "\n\n".join(parts) + "\n"


def _head(c: Checklist) -> list[str]:
    facts = [
        f"- Runbook: **{c.name}** version **{c.version}**",
        f"- sha256: `{c.sha256}`",
        f"- File: {_code(c.path)}",
        f"- Platform: {c.platform}",
    ]
    if c.source:
        facts.insert(1, f"- Source: {_plain(c.source)}")
    if c.run is None:
        facts += [f"- Operator: {LINE}", f"- Date: {LINE}"]
    else:
        facts += _run(c)
    return [f"# {_plain(c.title)}", "\n".join(facts), *([c.description.strip()] if c.description else [])]


def _run(c: Checklist) -> list[str]:
    run = c.run
    assert run is not None
    where = f" on {run.hostname}" if run.hostname else ""
    ended = (
        f"ended {clock(run.ended, c.day)}: **{run.status}** (exit {run.exit_code})"
        if run.ended
        else "**no end recorded** (still running, or stopped without a trace)"
    )
    facts = [
        f"- Run: `{run.run_id}` by {run.user or 'unknown'}{where}, started {clock(run.started)}, {ended}"
    ]
    if c.changed:
        facts.append(
            f"- **The runbook changed since this run** (run used sha256 `{run.runbook.sha256}`): "
            "the commands below are today's, not necessarily the ones that ran."
        )
    return facts


def _warnings(c: Checklist) -> list[str]:
    if not c.warnings:
        return []
    quoted = ["> " + f"**WARNING:** {_plain(w.strip())}".replace("\n", "\n> ") for w in c.warnings]
    ack = _tick(
        _confirmed(c.run.confirmations.get(None) if c.run else None, "I have read the warnings above", c.day)
    )
    return ["\n>\n".join(quoted), ack]


def _confirmed(confirmed: Confirmation | None, label: str, day: str) -> tuple[bool, str]:
    if confirmed is None:
        return False, f"{label} — name {LINE} time {LINE}"
    return confirmed.ok, f"{label} — {confirmation_text(confirmed, day)}"


def _tick(state: tuple[bool, str]) -> str:
    return f"- [{'x' if state[0] else ' '}] {state[1]}"


def _before(c: Checklist) -> list[str]:
    parts = ["## Before you start", "### Values"]
    rows = []
    for value in c.values:
        text = BLANK if value.text is None else (value.text if value.secret else _code(value.text))
        notes = " ".join(
            n for n in (_plain(value.description), f"({value.source})" if value.source else "") if n
        )
        rows.append(f"- `{value.name}` = {text}" + (f" — {notes}" if notes else ""))
    parts.append("\n".join(rows) if rows else "No variables.")
    if c.values and any(v.text is None for v in c.values):
        parts.append(f"Write the values left blank ({BLANK}) here and wherever they appear in a command.")
    if c.checks:
        parts.append("### Preflight checks")
        parts += [_check(item) for item in c.checks]
    return parts


def _check(item: Item) -> str:
    where = f" — {', '.join(item.facts)}" if item.facts else ""
    blocks = [_commands(item.commands)] if item.commands else []
    if not item.fan_out:
        return _item(tick(item.boxes[0].outcome) is True, f"{_plain(item.title)}{where}", blocks)
    return "\n\n".join([f"**{_plain(item.title)}**{where}", *blocks, _boxes(item.boxes, "")])


def _step(item: Item, day: str) -> list[str]:
    step_id, *facts = item.facts
    parts = [f"**{str(item.number).partition('.')[0]}. {_plain(item.group)}**"] if item.group else []
    parts += [f"### {item.number}. {_plain(item.title)}", " · ".join([_code(step_id), *facts])]
    if item.description:
        parts.append(item.description.strip())
    if item.signatures:
        parts.append(_four_eyes(item))
    if item.confirm:
        typed = f" Type: {_code(item.confirm_text)}" if item.confirm_text else ""
        parts.append(f"**Confirm before running:** {_plain(item.confirm)}{typed}")
        if item.confirmed:
            parts.append(confirmation_text(item.confirmed, day) + ".")
    if item.kind == "manual":
        return parts + _manual(item, day)
    if item.env:
        parts.append("Environment: " + ", ".join(_code(e) for e in item.env))
    if item.commands:
        each = "Run on each host:\n\n" if item.fan_out and len(item.boxes) > 1 else ""
        parts.append(each + _commands(item.commands))
    if item.result:
        parts.append(f"Expected result: {_plain(item.result.strip())}")
    return [*parts, _boxes(item.boxes, day)]


def _four_eyes(item: Item) -> str:
    """`approval:`: what it asks, then a line per approver (to sign, or as given); a break-glass in bold."""
    lines = [f"**Four eyes:** {_plain(item.approval or '')}"]
    for line in item.signatures:
        text = f"**{_plain(line.text)}**" if line.glass else _plain(line.text)
        lines.append(f"- {'✔' if line.signed else '✍'} {text}")  # not a task item: one per step and host
    return "\n".join(lines)


def _boxes(boxes: tuple[Box, ...], day: str) -> str:
    """One task item per host: a tight list, unless a host has its own command block."""
    loose = any(box.commands or box.cwd for box in boxes)
    return ("\n\n" if loose else "\n").join(_box(box, day) for box in boxes)


def _manual(item: Item, day: str) -> list[str]:
    parts = ["**Do this by hand:**", "> " + _plain(item.manual or "").replace("\n", "\n> ")]
    answer, box = item.answer, item.boxes[0]
    parts += [f"_{_plain(box.note)}_"] if box.note else []
    prompt = _plain(item.record_prompt or "Observed")
    expected = f" (expected: {item.record_expect})" if item.record_expect else ""
    if answer is None:
        done = box.outcome is not None and box.outcome.ok
        parts.append(_tick((done, f"Done. {prompt}: {LINE}{expected} — name {LINE} time {LINE}")))
    else:
        verdict = "as expected" if answer.ok else "**NOT as expected**"
        text = (
            f"{prompt}: **{answer.answer or ''}**{expected}, {verdict} — by {who(answer.user, answer.by)} "
            f"at {clock(answer.time, day)}"
        )
        parts.append(_tick((answer.ok, text)))
    if item.result:
        parts.append(f"Expected result: {_plain(item.result.strip())}")
    return parts


def _box(box: Box, day: str = "") -> str:
    label = "Done" if box.local and not box.commands and box.host == "local" else f"`{box.host}`"
    blocks = []
    if box.cwd:
        blocks.append(f"in {_code(box.cwd)}")
    if box.commands:
        blocks.append(_commands(box.commands))
    return _item(*_state(box.outcome, label, box.note, day), blocks)


def _state(outcome: Attempt | None, label: str, note: str, day: str) -> tuple[bool, str]:
    suffix = f" — {note}" if note else ""
    if outcome is None:
        return False, f"{label}{suffix} — time {LINE}"
    facts = [
        f"started {clock(outcome.started, day)}" if outcome.started else "",
        f"ended {clock(outcome.ended, day)}" if outcome.ended else "",
        duration(outcome.duration),
        f"exit {outcome.exit_code}" if outcome.exit_code is not None else "",
        f"attempt {outcome.attempt}" if outcome.attempt > 1 else "",
    ]
    status = STATUS_LABELS.get(outcome.status, outcome.status)
    mark = {True: "✓", False: "✗", None: "–"}[tick(outcome)]
    shown = f"**{status}**" if not outcome.ok else status
    return outcome.ok, f"{label} — {mark} {shown} · " + " · ".join(f for f in facts if f)


def _item(done: bool, text: str, blocks: list[str]) -> str:
    body = "".join("\n\n" + _indent(block) for block in blocks)
    return f"- [{'x' if done else ' '}] {text}{body}"


def _indent(block: str) -> str:
    return "\n".join(("  " + line) if line else "" for line in block.split("\n"))


def _commands(commands: tuple[Command, ...]) -> str:
    return "\n\n".join((f"{c.label}:\n\n" if c.label else "") + _fence(c.text) for c in commands)


def _fence(text: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}sh\n{text}\n{fence}"


def _plain(text: str) -> str:
    """Runbook text that is not Markdown (titles, warnings, instructions): a `<` must not start raw HTML."""
    return text.replace("<", "\\<")


def _code(text: str) -> str:
    """An inline code span of `text` exactly: fenced with more backticks than any run inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if longest or text.startswith(" ") or text.endswith(" ") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"
