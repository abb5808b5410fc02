"""Where a person answers: the warnings, `confirm`, manual steps with `record` — as `pause` and `assert`.

`pause` waits at a terminal; without one (AWX, CI, a pipe) it returns an empty answer at once, and the
`assert` after it then stops the playbook, as the engine stops without `--yes`. Two extra variables answer
instead, like the engine's flags: `runbook_yes=true` (`--yes`: warnings and confirmations) and
`runbook_confirm_manual=true` (`--confirm-manual`: manual steps, with their expected answer).

`pause` runs once for all the play's hosts (a bypass of the host loop) but registers its answer on the first
host only: `run_once` gives the answer to every host, so each host's `assert` reads it.
The expected answer is a task var (`runbook_expected`, data); the `assert` compares with it by name.
"""

from __future__ import annotations

from engine.export.ansible_tasks import ANSWER, CONFIRM_MANUAL, EXPECTED, YES
from engine.export.yamltext import Item, data
from engine.planning import PlannedStep

_YES_WORDS = "['y', 'yes']"


def _pause(name: str, prompt: str, answered_by: str) -> Item:
    return Item(
        {
            "name": name,
            "ansible.builtin.pause": {"prompt": data(prompt)},
            "register": ANSWER,
            "run_once": True,
            "when": f"not ({answered_by})",
        }
    )


def _assert(name: str, that: str, fail_msg: str, expected: str | None = None) -> Item:
    task = {"name": name, "ansible.builtin.assert": {"that": that, "fail_msg": data(fail_msg)}}
    return Item({**task, "vars": {EXPECTED: data(expected)}} if expected is not None else task)


def warnings(texts: tuple[str, ...]) -> list[Item]:
    """Shown once, before anything runs; answered y (or by runbook_yes)."""
    prompt = "\n".join(f"WARNING: {text}" for text in texts) + "\nGo on? [y/N]"
    return [
        _pause("Show the warnings and ask to go on", prompt, YES),
        _assert(
            "Go on only if the warnings were accepted",
            f"{YES} or {ANSWER}.user_input | trim | lower in {_YES_WORDS}",
            "the warnings were not accepted; nothing ran (runbook_yes=true answers them)",
        ),
    ]


def approval(planned: PlannedStep, name: str) -> list[Item]:
    """`approval:` exported with --lossy: a pause, which proves nothing about who approved (the comment
    above the step says so too)."""
    assert planned.approval is not None
    count = planned.approval.required
    prompt = (
        f"FOUR EYES (lossy): {count} other operator(s) must approve this step before it runs; Ansible "
        "cannot check who does. Press Enter once they have, Ctrl-C then A to stop"
    )
    return [
        Item(
            {
                "name": f"{name}: wait for approval (lossy: not proven)",
                "ansible.builtin.pause": {"prompt": data(prompt)},
            }
        )
    ]


def confirm(planned: PlannedStep, name: str) -> list[Item]:
    """`confirm:` before the step's command: y/n, or the text to type exactly."""
    assert planned.step.confirm is not None
    question = planned.confirm_question or ""
    typed = planned.confirm_text
    if typed is not None:
        prompt = f"{question}\nType {typed!r} to go on"
        answered = f"{ANSWER}.user_input | trim == {EXPECTED}"
    else:
        prompt = f"{question} [y/N]"
        answered = f"{ANSWER}.user_input | trim | lower in {_YES_WORDS}"
    return [
        _pause(f"{name}: confirm", prompt, YES),
        _assert(
            f"{name}: go on only if confirmed",
            f"{YES} or {answered}",
            f"step {planned.id!r} was declined; it did not run, and nothing after it",
            typed.strip() if typed is not None else None,
        ),
    ]


def manual(planned: PlannedStep, name: str) -> list[Item]:
    """A manual step: the text, then the record's question (or "Done?"), and the answer checked."""
    record = planned.step.record
    question = f"{planned.record_prompt}:" if record else "Done? [y/N]"
    prompt = f"MANUAL STEP — do this yourself:\n{(planned.manual or '').strip()}\n\n{question}"
    tasks = [_pause(f"{name} (manual)", prompt, CONFIRM_MANUAL)]
    answer = f"{ANSWER}.user_input | trim"
    expected: str | None = None
    if record is None:
        that = f"{CONFIRM_MANUAL} or {answer} | lower in {_YES_WORDS}"
        fail = "not confirmed"
    elif planned.record_expect is not None:
        expected = planned.record_expect.strip()
        that = f"{CONFIRM_MANUAL} or {answer} == {EXPECTED}"
        fail = f"expected {expected!r}"
    elif record.matches is not None:  # the engine's --confirm-manual cannot answer a pattern either
        expected = f"(?:{record.matches})\\Z"
        that = f"not ({CONFIRM_MANUAL}) and {answer} is match({EXPECTED})"
        fail = f"expected an answer matching {record.matches!r} (runbook_confirm_manual cannot answer it)"
    else:
        return tasks  # any answer is recorded
    tasks.append(_assert(f"{name}: check the answer", that, f"step {planned.id!r}: {fail}", expected))
    return tasks
