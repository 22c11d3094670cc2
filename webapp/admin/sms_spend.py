"""SMS spend: the monthly report per customer and country (page and CSV), and the `money` filter."""

from __future__ import annotations

from flask import Response, current_app, render_template, request

from webapp.admin import bp
from webapp.pricing import money
from webapp.services import sms_spend


@bp.app_template_filter("money")
def money_filter(micros: int | None) -> str:
    return money(micros, current_app.config["SMS_CURRENCY"])


def _month() -> tuple[sms_spend.Month, str | None]:
    try:
        return sms_spend.month_asked(request.args.get("month")), None
    except ValueError as exc:
        month = sms_spend.month_asked(None)
        return month, f"{exc}; showing {month.title}."


@bp.get("/reports/sms-spend")
def report_sms_spend():
    month, error = _month()
    return render_template(
        "admin/reports/sms_spend.html", report=sms_spend.report(month), error=error, prices=_price_table()
    )


@bp.get("/reports/sms-spend.csv")
def report_sms_spend_csv():
    month, _ = _month()
    return Response(
        sms_spend.report(month).to_csv(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="sms-spend-{month.label}.csv"'},
    )


def _price_table() -> list[tuple[str, str]]:
    prices = current_app.config["SMS_PRICES"]
    currency = current_app.config["SMS_CURRENCY"]
    return [(country, money(price, currency)) for country, price in sorted(prices.items(), key=lambda i: i[0] == "*")]
