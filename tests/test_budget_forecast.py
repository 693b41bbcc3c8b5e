"""The month-end forecast: flat spend, weekday seasonality, a spike, a young period; provider forecasts."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

from conftest import write_config
from fakes.focus_days import days, write_daily

from finops_cli.analyses.forecast import forecast_period

NOV_START, DEC_START = date(2026, 11, 1), date(2026, 12, 1)  # November 2026 starts on a Sunday


def series(first: date, last: date, cost) -> dict[date, Decimal]:
    return {d: Decimal(cost(d)) for d in days(first, last)}


def weekday_cost(d: date) -> int:
    return 100 if d.weekday() < 5 else 20


def test_flat_month_forecasts_exactly_with_high_confidence():
    daily = series(date(2026, 10, 1), date(2026, 11, 15), lambda d: 100)
    f = forecast_period(daily, NOV_START, DEC_START, date(2026, 11, 15))
    assert f.amount == Decimal("3000.00")
    assert f.lower == f.upper == f.amount
    assert f.confidence == "high" and f.days_observed == 28 + 14  # 4 weeks of history, 14 complete days of November


def test_weekday_seasonality_is_followed_not_averaged():
    daily = series(date(2026, 10, 1), date(2026, 11, 15), weekday_cost)
    f = forecast_period(daily, NOV_START, DEC_START, date(2026, 11, 15))
    truth = sum(Decimal(weekday_cost(d)) for d in days(NOV_START, date(2026, 11, 30)))
    assert truth == Decimal(2280)
    assert f.amount == truth
    naive = Decimal(1100) / 15 * 30  # spend so far x 30/15 days: what a plain run rate would say
    assert abs(naive - truth) > 70
    assert f.confidence == "high"


def test_a_spike_is_counted_once_not_extrapolated():
    daily = series(date(2026, 10, 1), date(2026, 11, 15), lambda d: 2000 if d == date(2026, 11, 14) else 100)
    f = forecast_period(daily, NOV_START, DEC_START, date(2026, 11, 15))
    spent = Decimal(15 * 100 + 1900)
    assert f.amount == spent + 15 * 100  # the rest of the month at the usual 100 a day
    assert any("2026-11-14 cost 20.0x a usual day; counted once" in n for n in f.notes)


def test_a_period_two_days_old_says_low_confidence():
    daily = series(date(2026, 11, 1), date(2026, 11, 2), lambda d: 100)  # a new account: no history
    f = forecast_period(daily, NOV_START, DEC_START, date(2026, 11, 3))
    assert f.amount == Decimal("3000.00")
    assert f.confidence == "low" and f.days_observed == 2
    assert f.upper - f.lower > Decimal(1000)  # honest: the interval is wide
    assert f.lower >= Decimal(200)  # never below what is already spent
    assert any("only 2 complete days of data" in n for n in f.notes)


def test_late_billing_data_is_not_read_as_zero_spend():
    daily = series(date(2026, 10, 1), date(2026, 11, 13), lambda d: 100)  # the last two days not billed yet
    f = forecast_period(daily, NOV_START, DEC_START, date(2026, 11, 15))
    assert f.amount == Decimal("3000.00")


def test_an_ended_period_is_exact():
    daily = series(date(2026, 10, 1), date(2026, 10, 31), lambda d: 10)
    f = forecast_period(daily, date(2026, 10, 1), NOV_START, date(2026, 11, 3))
    assert (f.amount, f.confidence) == (Decimal(310), "exact")


def test_forecasted_threshold_waits_for_data_then_fires(tmp_path, finops, monkeypatch):
    config = write_config(tmp_path, """
store: store.duckdb
sources: [{name: files, type: focus, path: data}]
budgets:
  - name: ml
    scope: {team: ml}
    amount: 2500
    currency: USD
    thresholds:
      - {percent: 100, basis: forecasted, severity: critical}
""")
    write_daily(tmp_path / "data" / "ml.csv", date(2026, 11, 1), date(2026, 11, 2), lambda d: 100, {"team": "ml"})
    monkeypatch.setenv("FINOPS_NOW", "2026-11-03T01:00:00Z")
    young = finops("--config", config, "budget", "check", "--format", "json")
    assert young.exit_code == 0, young.stderr
    budget = json.loads(young.stdout)["budgets"][0]
    assert budget["forecast"]["confidence"] == "low" and budget["forecast"]["amount"] == "3000.00"
    assert budget["thresholds"][0]["crossed"] is False
    assert "forecast confidence is low" in budget["thresholds"][0]["waiting"]

    write_daily(tmp_path / "data" / "ml.csv", date(2026, 11, 1), date(2026, 11, 10), lambda d: 100, {"team": "ml"})
    monkeypatch.setenv("FINOPS_NOW", "2026-11-11T01:00:00Z")
    later = finops("--config", config, "budget", "check", "--format", "json")
    assert later.exit_code == 1
    budget = json.loads(later.stdout)["budgets"][0]
    assert budget["forecast"]["amount"] == "3000.00" and budget["forecast"]["confidence"] == "medium"
    assert budget["thresholds"][0]["crossed"] is True and budget["status"] == "critical"


def test_weekdays_only_spend_forecasts_no_weekend_cost():
    daily = series(date(2026, 10, 1), date(2026, 11, 15), lambda d: 100 if d.weekday() < 5 else 0)
    f = forecast_period(daily, NOV_START, DEC_START, date(2026, 11, 15))
    assert f.amount == Decimal(100 * 21)  # November 2026 has 21 weekdays


def _store_with(tmp_path, finops, monkeypatch, second_source: bool = False):
    from finops_cli.config import load_config
    from finops_cli.store import Store

    write_daily(tmp_path / "a" / "a.csv", date(2026, 10, 1), date(2026, 11, 15), lambda d: 100, {"team": "ml"})
    write_daily(tmp_path / "b" / "b.csv", date(2026, 10, 1), date(2026, 11, 15), lambda d: 10, {"team": "ml"})
    sources = "[{name: a, type: focus, path: a}" + (", {name: b, type: focus, path: b}]" if second_source else "]")
    config_path = write_config(tmp_path, f"""
store: store.duckdb
sources: {sources}
budgets: [{{name: ml, scope: {{team: ml}}, amount: 5000, currency: USD}}]
""")
    monkeypatch.setenv("FINOPS_NOW", "2026-11-15T12:00:00Z")
    assert finops("--config", config_path, "sync").exit_code == 0
    config = load_config(path=config_path)
    return config, Store.open(config.store_path())


def test_a_sources_own_forecast_is_used_when_the_data_is_all_its_own(tmp_path, finops, monkeypatch):
    from finops_cli.analyses.budgets import evaluate
    from finops_cli.sources.base import Forecast

    config, store = _store_with(tmp_path, finops, monkeypatch)
    asked = []

    def provider(source, window, filters):
        asked.append((source, window.start.date().isoformat(), window.end.date().isoformat(), filters))
        return Forecast(mean=Decimal(1700), currency="USD", lower=Decimal(1500), upper=Decimal(1900),
                        confidence=0.8)

    with store:
        [status] = evaluate(store.con, config.file.budgets, config.allocation, provider_forecast=provider)
    assert asked == [("a", "2026-11-15", "2026-12-01", {"team": ["ml"]})]
    assert status.forecast.amount == Decimal(1400 + 1700)  # 14 days billed before today + the provider's rest
    assert (status.forecast.lower, status.forecast.upper) == (Decimal(2900), Decimal(3300))
    assert status.forecast.method == "a provider forecast (80% interval)"


def test_provider_forecast_falls_back_on_failure_and_on_mixed_sources(tmp_path, finops, monkeypatch):
    from finops_cli.analyses.budgets import evaluate
    from finops_cli.errors import SourceError

    config, store = _store_with(tmp_path, finops, monkeypatch, second_source=True)
    asked = []

    def provider(source, window, filters):
        asked.append(source)
        raise SourceError(source, "throttled")

    with store:
        [mixed] = evaluate(store.con, config.file.budgets, config.allocation, provider_forecast=provider)
        assert asked == [] and mixed.forecast.method == "weekday-weighted run rate"
        assert mixed.forecast.amount == Decimal(110 * 30)
        only_a = config.file.budgets[0].model_copy(update={"scope": {"team": "ml", "source": "a"}})
        [single] = evaluate(store.con, [only_a], config.allocation, provider_forecast=provider)
    assert asked == ["a"]
    assert single.forecast.amount == Decimal(3000)
    assert any("a's own forecast failed (source 'a': throttled)" in n for n in single.notes)


def test_provider_forecasts_are_asked_once_a_day(tmp_path, finops, monkeypatch):
    from datetime import datetime

    from finops_cli.analyses.budgets import cached_daily, evaluate
    from finops_cli.sources.base import Forecast

    config, store = _store_with(tmp_path, finops, monkeypatch)
    asked = []

    def provider(source, window, filters):
        asked.append(window.start)
        return Forecast(mean=Decimal("1700.5"), currency="USD", lower=None, upper=None)

    with store:
        cached = cached_daily(provider, store)
        runs = [evaluate(store.con, config.file.budgets, config.allocation, provider_forecast=cached,
                         now=datetime(2026, 11, 15, hour))[0] for hour in (1, 9, 23)]
        later = evaluate(store.con, config.file.budgets, config.allocation, provider_forecast=cached,
                         now=datetime(2026, 11, 16, 1))[0]
    assert len(asked) == 2  # once on the 15th (three hourly runs), once on the 16th
    assert {r.forecast.amount for r in runs} == {Decimal("3100.5")}
    assert later.forecast.method == "a provider forecast"
