"""Routes of the forecast part of API.md (GET/PUT /api/stages are the
customers service's, in routes/records.py)."""

from __future__ import annotations

from gateway.http import Call, route
from services.forecast import schemas as s


class ForecastRoutes:
    @route("GET", "/api/forecast", query=s.ForecastQuery, response=s.ForecastOut, tag="forecast",
           summary="Weighted pipeline and forecast: a rep his own, a manager his team "
                   "(or one of his reps), an admin the company, a team or a rep")
    def get_forecast(self, call: Call, query):
        return self.forecast.get_forecast(call.actor, query.model_dump(exclude_none=True))

    @route("GET", "/api/forecast/history", query=s.HistoryQuery, response=s.HistoryOut,
           tag="forecast", summary="Weekly snapshots of the forecast, newest first")
    def get_forecast_history(self, call: Call, query):
        return self.forecast.get_history(call.actor, query.model_dump(exclude_none=True))

    @route("GET", "/api/forecast/backtest", query=s.BacktestQuery, response=s.BacktestOut,
           tag="forecast",
           summary="Both methods replayed to past month ends and scored on the month after")
    def get_forecast_backtest(self, call: Call, query):
        return self.forecast.get_backtest(call.actor, query.model_dump(exclude_none=True))

    @route("POST", "/api/forecast/rebuild", roles=("admin",), response=s.JobOut, status=202,
           tag="forecast",
           summary="Rebuild the read model from customers' own data (a job; poll it)")
    def start_forecast_rebuild(self, call: Call):
        return self.forecast.start_job(call.actor, "rebuild")

    @route("POST", "/api/forecast/reconcile", roles=("admin",), response=s.JobOut, status=202,
           tag="forecast",
           summary="Compare the read model with customers' own data (a job; poll it)")
    def start_forecast_reconcile(self, call: Call):
        return self.forecast.start_job(call.actor, "reconcile")

    @route("GET", "/api/forecast/reconcile", roles=("admin",), response=s.JobOut,
           tag="forecast", summary="The latest reconcile run and its report")
    def latest_forecast_reconcile(self, call: Call):
        return self.forecast.latest_job(call.actor, "reconcile")

    @route("GET", "/api/forecast/jobs/{id}", roles=("admin",), response=s.JobOut,
           tag="forecast", summary="A rebuild or reconcile run")
    def get_forecast_job(self, call: Call, id):
        return self.forecast.get_job(call.actor, id)
