"""The overview page: decisions per day for the last 30 days, top reasons, rules and blocked senders, the chain's state."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.console import charts
from gateway.console.figures import CATEGORIES, DAYS
from gateway.console.signin import requires
from gateway.console.state import console_of, render


@requires("read")
async def overview(request: Request) -> Response:
    console = console_of(request)
    path = console.config.audit.path
    today = datetime.now(UTC).date()
    try:
        figures = await run_in_threadpool(console.tally.update, path, today)
        chain = await run_in_threadpool(console.chain.report, path)
    except OSError as e:
        return render(
            request, "error.html", {"message": f"Granskningsloggen kan inte läsas: {e.strerror}"}, 503
        )
    context = {
        "figures": figures,
        "chain": chain,
        "categories": CATEGORIES,
        "colours": charts.COLOURS,
        "days": DAYS,
        "per_day": charts.stacked_columns(figures.days, figures.series, "Beslut per dag"),
        "bars": {
            name: charts.horizontal_bars(items, title)
            for name, items, title in (
                ("reasons", figures.reasons, "Vanligaste skäl"),
                ("rules", figures.rules, "Vanligaste regler"),
                ("unscannable", figures.unscannable, "Oläsbara delar"),
                ("senders", figures.blocked_senders, "Avsändare med flest stopp"),
            )
        },
    }
    return render(request, "overview.html", context)


def routes() -> list[Route]:
    return [Route("/", overview, methods=["GET"], name="overview")]
