"""/api/v1/reports/sla: SLA compliance per customer and priority; /api/v1/reports/sms-spend: a month's SMS
spend per customer and country. JSON or CSV."""

from __future__ import annotations

from flask import Response, request

from webapp import tenancy
from webapp.api import bp
from webapp.api.access import api_required
from webapp.inputs import InvalidQuery, query_choice
from webapp.services import sms_spend
from webapp.services.tickets import sla_report


@bp.get("/reports/sla")
@api_required("read")
def report_sla():
    try:
        start, end = sla_report.period(request.args.get("from"), request.args.get("to"))
    except ValueError as exc:
        raise InvalidQuery(*exc.args) from None
    fmt = query_choice("format", ("json", "csv")) or "json"
    rows = sla_report.compliance(start=start, end=end, principal=tenancy.current())
    if fmt == "csv":
        name = f"sla-{start.date().isoformat()}-{end.date().isoformat()}.csv"
        return Response(
            sla_report.to_csv(rows),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return {"from": start.isoformat(), "to": end.isoformat(), "rows": sla_report.as_dicts(rows)}


@bp.get("/reports/sms-spend")
@api_required("read")
def report_sms_spend():
    try:
        month = sms_spend.month_asked(request.args.get("month"))
    except ValueError:
        raise InvalidQuery("month", "a month written YYYY-MM, e.g. 2026-12") from None
    fmt = query_choice("format", ("json", "csv")) or "json"
    report = sms_spend.report(month, principal=tenancy.current())
    if fmt == "csv":
        return Response(
            report.to_csv(),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="sms-spend-{month.label}.csv"'},
        )
    return {"month": month.label, "currency": report.currency, "rows": report.as_dicts()}


_ROW = {
    "type": "object",
    "properties": {
        "customer_id": {"type": "integer"},
        "customer": {"type": "string"},
        "priority": {"type": "string"},
        "tickets": {"type": "integer"},
        "met": {"type": "integer"},
        "breached": {"type": "integer"},
        "at_risk": {"type": "integer"},
        "open": {"type": "integer"},
        "compliance_percent": {"type": ["number", "null"]},
        "mean_time_to_resolve_seconds": {"type": ["integer", "null"]},
        "paused_seconds": {"type": "integer"},
    },
}
_MONEY = {"type": "string", "description": "an amount in the report's currency, as a decimal string"}
_SPEND_ROW = {
    "type": "object",
    "properties": {
        "customer_id": {"type": ["integer", "null"]},
        "customer": {"type": "string"},
        "messages": {"type": "integer"},
        "segments": {"type": "integer"},
        "cost": _MONEY,
        "budget": {**_MONEY, "type": ["string", "null"]},
        "budget_used_percent": {"type": ["number", "null"]},
        "simulated_messages": {"type": "integer"},
        "countries": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "country": {"type": "string"},
                    "messages": {"type": "integer"},
                    "segments": {"type": "integer"},
                    "cost": _MONEY,
                },
            },
        },
    },
}
OPENAPI_SCHEMAS = {
    "SmsSpendReport": {
        "type": "object",
        "properties": {
            "month": {"type": "string", "example": "2026-12"},
            "currency": {"type": "string", "example": "USD"},
            "rows": {"type": "array", "items": _SPEND_ROW},
        },
    },
    "SlaReport": {
        "type": "object",
        "properties": {
            "from": {"type": "string", "format": "date-time"},
            "to": {"type": "string", "format": "date-time"},
            "rows": {"type": "array", "items": _ROW},
        },
    },
}
_FORMAT = {"name": "format", "in": "query", "required": False, "schema": {"type": "string", "enum": ["json", "csv"]}}


def _report(summary: str, schema: str, parameters: list[dict], refused: str) -> dict:
    """A report's GET, as JSON (the `schema` component) or CSV; `refused`: what a 400 names."""
    return {
        "get": {
            "summary": summary,
            "tags": ["reports"],
            "parameters": [*parameters, _FORMAT],
            "responses": {
                "200": {
                    "description": "The report",
                    "content": {
                        "application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}},
                        "text/csv": {"schema": {"type": "string"}},
                    },
                },
                "401": {"description": "No or invalid credentials"},
                "400": {"description": f"Invalid {refused} or format (the parameter named in error.fields)"},
            },
        }
    }


OPENAPI_PATHS = {
    "/api/v1/reports/sms-spend": _report(
        "A month's SMS spend per customer and destination country, with each customer's budget",
        "SmsSpendReport",
        [
            {
                "name": "month",
                "in": "query",
                "required": False,
                "schema": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"},
                "description": "YYYY-MM (UTC calendar month); default this month",
            }
        ],
        "month",
    ),
    "/api/v1/reports/sla": _report(
        "SLA compliance per customer and priority (tickets created in the period)",
        "SlaReport",
        [
            {
                "name": "from",
                "in": "query",
                "required": False,
                "schema": {"type": "string"},
                "description": "date or ISO 8601 time; default 30 days before 'to'",
            },
            {
                "name": "to",
                "in": "query",
                "required": False,
                "schema": {"type": "string"},
                "description": "date or ISO 8601 time; default now",
            },
        ],
        "period",
    ),
}
