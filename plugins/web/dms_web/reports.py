"""Daily reports: SAIFI/SAIDI/CAIDI (work orders plugin), losses and limit violations
(historian), as rows for JSON, CSV and PDF."""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import datetime, timedelta, timezone
from typing import Any

__all__ = ["daily_rows", "to_csv", "to_pdf", "COLUMNS"]

COLUMNS = (
    ("day", "Day"), ("saifi", "SAIFI"), ("saidi_min", "SAIDI (min)"), ("caidi_min", "CAIDI (min)"), ("maifi", "MAIFI"),
    ("interruptions", "Interruptions"), ("customers_interrupted", "Customers int."), ("losses_mwh", "Losses (MWh)"),
    ("limit_violations", "Limit violations"),
)
MAX_GAP_S = 600.0


def days(since: float, until: float) -> list[tuple[str, float, float]]:
    start = datetime.fromtimestamp(since, timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    out = []
    while start.timestamp() < until and len(out) < 366:
        end = start + timedelta(days=1)
        out.append((start.date().isoformat(), start.timestamp(), end.timestamp()))
        start = end
    return out


def losses_and_violations(target: Any, since: float, until: float) -> tuple[dict[str, float], dict[str, int]]:
    """Loss energy per day (MWh, integrated from power-flow results, gaps > 10 min skipped)
    and limit violations per day (distinct limit alarms raised)."""
    from sqlalchemy import create_engine, select

    from dms_sqlhistorian import schema

    engine = create_engine(target) if isinstance(target, str) else target
    losses: dict[str, float] = {}
    violations: dict[str, set[str]] = {}
    sr, al = schema.study_results, schema.alarms
    with engine.connect() as connection:
        rows = connection.execute(select(sr.c.finished, sr.c.data).where(sr.c.study == "power_flow", sr.c.converged.is_(True),
                                                                         sr.c.finished >= since, sr.c.finished < until).order_by(sr.c.finished))
        previous: tuple[float, float] | None = None
        for finished, data in rows:
            try:
                mw = float(json.loads(data).get("losses_mw", math.nan))
            except (ValueError, TypeError, AttributeError):
                continue
            if not math.isfinite(mw):
                continue
            if previous is not None and 0 < finished - previous[0] <= MAX_GAP_S:
                day = datetime.fromtimestamp(finished, timezone.utc).date().isoformat()
                losses[day] = losses.get(day, 0.0) + (previous[1] + mw) / 2 * (finished - previous[0]) / 3600.0
            previous = (finished, mw)
        for t, message in connection.execute(select(al.c.time, al.c.message).where(
                al.c.state == "raised", al.c.category.in_(("limit", "point-limit")), al.c.time >= since, al.c.time < until)):
            day = datetime.fromtimestamp(t, timezone.utc).date().isoformat()
            violations.setdefault(day, set()).add(message)
    return losses, {day: len(messages) for day, messages in violations.items()}


def daily_rows(workorders: Any, historian: Any, since: float, until: float) -> list[dict[str, Any]]:
    """One row per UTC day in ``[since, until)``; values ``None`` where the plugin is missing."""
    losses, violations = ({}, {}) if historian is None else losses_and_violations(historian, since, until)
    rows = []
    for day, start, end in days(since, until):
        row: dict[str, Any] = {key: None for key, _ in COLUMNS}
        row["day"] = day
        idx = None
        if workorders is not None:
            try:
                idx = workorders.indices(start, end)
            except ValueError:  # no customers served known (no model, customers_served = 0)
                idx = None
        if idx is not None:
            row.update(saifi=idx.saifi, saidi_min=idx.saidi_min, caidi_min=idx.caidi_min, maifi=idx.maifi,
                       interruptions=idx.interruptions, customers_interrupted=idx.customers_interrupted)
        if historian is not None:
            row["losses_mwh"] = losses.get(day, 0.0)
            row["limit_violations"] = violations.get(day, 0)
        rows.append(row)
    return rows


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if not math.isfinite(value) else f"{value:.4g}"
    return str(value)


def to_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([key for key, _ in COLUMNS])
    for row in rows:
        # values are numbers or ISO dates: nothing a spreadsheet would run as a formula
        writer.writerow([_text(row[key]) for key, _ in COLUMNS])
    return out.getvalue()


def to_pdf(rows: list[dict[str, Any]], title: str, since: float, until: float) -> bytes:
    from fpdf import FPDF

    pdf = FPDF(orientation="L", format="A4")
    pdf.set_title(f"{title} - daily report")
    pdf.set_creator("Leitstand")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, f"{title}: daily operations report", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    period = f"{datetime.fromtimestamp(since, timezone.utc):%Y-%m-%d} to {datetime.fromtimestamp(until, timezone.utc):%Y-%m-%d} (UTC)"
    pdf.cell(0, 7, f"Period {period}; reliability indices after IEEE 1366 (sustained interruptions > 5 min)", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    with pdf.table(text_align="RIGHT", first_row_as_headings=True) as table:
        header = table.row()
        for _, label in COLUMNS:
            header.cell(label)
        for row in rows:
            line = table.row()
            for key, _ in COLUMNS:
                line.cell(_text(row[key]))
    pdf.ln(4)
    pdf.set_font("Helvetica", "I", 8)
    pdf.cell(0, 5, f"Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by Leitstand", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
