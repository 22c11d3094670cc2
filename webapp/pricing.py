"""What an SMS costs: a price per segment for each destination country, in the currency of SMS_CURRENCY.

Amounts are kept in millionths of the currency ("micros", whole numbers): a price of 0.0083 is 8300 micros,
so sums are exact on every database. The default table holds approximate list prices of an outbound SMS
segment (Twilio, in US dollars, carrier fees included where they apply); SMS_PRICES overrides any of them,
and its `*` entry prices every country the table does not name.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

MICROS = 1_000_000
ANY_COUNTRY = "*"
LARGEST = Decimal(1_000_000_000)  # a budget or price above it is a typing mistake (and would overflow micros)
DEFAULT_PRICES: dict[str, str] = {
    "US": "0.0083",
    "CA": "0.0083",
    "GB": "0.0524",
    "IE": "0.0827",
    "DE": "0.0887",
    "FR": "0.0798",
    "NL": "0.1070",
    "BE": "0.0954",
    "ES": "0.0865",
    "IT": "0.0843",
    "PT": "0.0436",
    "CH": "0.0708",
    "AT": "0.1070",
    "SE": "0.0697",
    "NO": "0.0707",
    "DK": "0.0607",
    "FI": "0.0946",
    "PL": "0.0447",
    "AU": "0.0515",
    "NZ": "0.1130",
    "JP": "0.0817",
    "SG": "0.0508",
    "IN": "0.0832",
    "BR": "0.0503",
    "MX": "0.0589",
    "ZA": "0.0262",
    ANY_COUNTRY: "0.0800",
}


def to_micros(amount: str | Decimal) -> int:
    """An amount of money as whole millionths; ValueError for anything that is not a number >= 0."""
    try:
        value = Decimal(str(amount).strip())
    except InvalidOperation:
        raise ValueError(f"{amount!r} is not an amount of money") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"{amount!r} is not an amount of money (a number, 0 or more)")
    if value > LARGEST:
        raise ValueError(f"{amount!r} is more than {LARGEST:,}")
    return int((value * MICROS).to_integral_value())


def parse_prices(text: str | None) -> dict[str, int]:
    """The default table with SMS_PRICES ("US=0.0083, GB=0.0524, *=0.08") laid over it, in micros."""
    prices = {country: to_micros(price) for country, price in DEFAULT_PRICES.items()}
    for entry in (text or "").replace(";", ",").split(","):
        if not entry.strip():
            continue
        country, sep, price = entry.partition("=")
        country = country.strip().upper()
        if not sep or not (country == ANY_COUNTRY or (len(country) == 2 and country.isalpha())):
            raise ValueError(f"{entry.strip()!r}: write COUNTRY=PRICE, e.g. US=0.0083 (two letters, or * for any)")
        prices[country] = to_micros(price)
    return prices


def segment_price(prices: dict[str, int], country: str) -> int:
    """The price of one segment to `country` (an ISO code, or "unknown"), in micros."""
    return prices.get(country, prices[ANY_COUNTRY])


def amount(micros: int | None) -> str:
    """An amount as a form shows it for editing: "49.9", "" for none."""
    if micros is None:
        return ""
    return format((Decimal(micros) / MICROS).normalize(), "f")


def money(micros: int | None, currency: str) -> str:
    """An amount as people read it: "12.34 USD", with more places for amounts under a cent."""
    value = Decimal(micros or 0) / MICROS
    places = Decimal("0.01") if value == 0 or value >= Decimal("0.01") else Decimal("0.0001")
    return f"{value.quantize(places):,} {currency}"
