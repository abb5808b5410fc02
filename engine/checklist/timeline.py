"""A run's timeline: each step on each host as a bar on one time axis, drawn as inline SVG (no script).

Where the time went and which host was slow should be visible at a glance, on screen and on paper: bars
start and end where the journal says, labelled with their duration; a failed one is black and marked ✗, a
start with no recorded end (crash, kill) is dashed and marked ? up to the end of the run (no colour needed:
the page is printed). Read from the folded journal (`RunHistory`), so the filled checklist and
`runbook runs --format html` draw the same picture.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from markupsafe import Markup, escape

from engine.checklist.filling import STATUS_LABELS, duration
from engine.history import Attempt, RunHistory
from engine.outcomes import Status

WIDTH, GUTTER, MARGIN = 720, 230, 120  # user units: labels left, the bar's own label right
ROW, BAR, AXIS = 20, 13, 28
_TICKS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400)
_CLASS = {Status.OK: "ok", Status.SKIPPED: "skip", Status.DONE_BEFORE: "skip", Status.UNKNOWN: "unknown"}


@dataclass(frozen=True)
class Bar:
    step: str
    host: str
    status: Status
    start: float  # seconds since the run started
    end: float
    ended: bool  # False: started, no end recorded (drawn up to the end of the run)
    took: float | None = None  # the journaled duration (every attempt): more precise than end - start

    @property
    def label(self) -> str:
        if not self.ended:
            return "? no end recorded"
        mark = "✗ " if self.status not in _CLASS else ""
        shown = duration(self.took if self.took is not None else self.end - self.start)
        return f"{mark}{shown}" if self.status is Status.OK else f"{mark}{STATUS_LABELS[self.status]} {shown}"


def _time(stamp: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(stamp) if stamp else None
    except ValueError:
        return None


def bars(run: RunHistory) -> tuple[tuple[Bar, ...], float]:
    """Every (step, host) of the run as a bar, in the order they started, and the run's length in seconds;
    a step tried again by a resume keeps the bar of each earlier series (a failure stays on the record)."""
    t0 = _time(run.started)
    if t0 is None:
        return (), 0.0
    drawn = [(key, a, a is host.latest) for key, host in run.hosts.items() for a in _drawn(host.attempts)]
    known = [(key, a, latest, span) for key, a, latest in drawn if (span := _span(a, t0)) is not None]
    last = max([end for *_, (_, end) in known] + [0.0])
    finished = _time(run.ended)
    length = max(last, (finished - t0).total_seconds() if finished else 0.0)
    found = []
    for (step, host), attempt, latest, (start, end) in known:
        open_ended = attempt.status is Status.UNKNOWN
        end = (length if latest else start) if open_ended else end
        found.append(Bar(step, host, attempt.status, start, end, not open_ended, attempt.duration))
    return tuple(sorted(found, key=lambda b: (b.start, b.end))), length


def _drawn(attempts: tuple[Attempt, ...]) -> tuple[Attempt, ...]:
    """The attempts a bar stands for: each that closed a series (its duration is the whole series'), one
    that never ended, and the latest."""
    earlier = [a for a in attempts[:-1] if a.last or a.status in (Status.UNKNOWN, Status.INTERRUPTED)]
    return (*earlier, attempts[-1])


def _span(outcome: Attempt, t0: datetime) -> tuple[float, float] | None:
    """(start, end) in seconds since t0; the start is the end less the duration when only the end is known."""
    started, ended = _time(outcome.started), _time(outcome.ended)
    if ended is not None and started is None and outcome.duration is not None:
        started = ended - timedelta(seconds=outcome.duration)
    if started is None:
        return None
    start = (started - t0).total_seconds()
    return start, (ended - t0).total_seconds() if ended else start


def tick_step(length: float) -> int:
    """The smallest round step that puts at most 8 ticks on the axis."""
    return next((t for t in _TICKS if length / t <= 8), _TICKS[-1])


def tick_label(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        minutes, rest = divmod(seconds, 60)
        return f"{minutes} min" + (f" {rest} s" if rest else "")
    hours, rest = divmod(seconds, 3600)
    return f"{hours} h" + (f" {rest // 60} min" if rest else "")


def svg(run: RunHistory) -> Markup:
    """The timeline as an `<svg>` element; empty when the journal has no timed step."""
    drawn, length = bars(run)
    if not drawn:
        return Markup("")
    plot = WIDTH - GUTTER - MARGIN
    scale = plot / max(length, 1.0)
    height = AXIS + ROW * len(drawn) + 4
    parts = [
        Markup(
            '<svg class="timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="100%" '
            'role="img" aria-label="Timeline of the run">'
        ).format(w=WIDTH, h=height),
    ]
    step = tick_step(length)
    for tick in range(0, int(length) + 1, step):
        x = GUTTER + tick * scale
        parts.append(
            Markup(
                '<line class="grid" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}"/>'
                '<text class="tick" x="{x:.1f}" y="{y}" text-anchor="middle">{label}</text>'
            ).format(x=x, top=AXIS - 6, bottom=height - 2, y=AXIS - 10, label=tick_label(tick))
        )
    for row, bar in enumerate(drawn):
        parts.append(_bar(bar, AXIS + row * ROW, scale))
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def _bar(bar: Bar, top: int, scale: float) -> Markup:
    x = GUTTER + bar.start * scale
    width = max((bar.end - bar.start) * scale, 2.0)
    kind = _CLASS.get(bar.status, "failed")
    name = f"{bar.step} · {bar.host}"
    shown = name if len(name) <= 38 else name[:37] + "…"
    return Markup(
        '<g class="bar {kind}"><title>{name}: {status}, {label}</title>'
        '<text class="name" x="{gx}" y="{ty}" text-anchor="end">{shown}</text>'
        '<rect x="{x:.1f}" y="{ry}" width="{w:.1f}" height="{h}" rx="2"/>'
        '<text class="took" x="{lx:.1f}" y="{ty}">{label}</text></g>'
    ).format(
        kind=kind,
        name=escape(name),
        status=STATUS_LABELS[bar.status],
        label=bar.label,
        gx=GUTTER - 6,
        ty=top + BAR - 2,
        shown=escape(shown),
        x=x,
        ry=top + (ROW - BAR) // 2 - 1,
        w=width,
        h=BAR,
        lx=x + width + 4,
    )
