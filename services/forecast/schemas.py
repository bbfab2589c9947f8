"""Forecast request and response shapes: they validate and they document.

Money is yuan (a JSON number, at most 2 decimals); probabilities are fractions
0..1 (0.25 for 25 %).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.common.schemas import Id, Page


class ForecastQuery(BaseModel):
    """Whose forecast: nothing = your own (rep), your team (manager), the
    company (admin)."""

    model_config = ConfigDict(extra="ignore")
    owner_id: Id | None = Field(None, description="one rep (a manager: of his team)")
    team_id: Id | None = Field(None, description="one team (admin; a manager: his own)")


class HistoryQuery(ForecastQuery, Page):
    pass


class BacktestQuery(ForecastQuery):
    months: int = Field(6, ge=1, le=24, description="how many past months to forecast")


class ForecastStageRow(BaseModel):
    stage: int
    label: str
    label_en: str | None = None
    probability: float
    active: bool
    count: int
    value: float
    weighted: float


class CalibratedStage(BaseModel):
    stage: int
    label: str
    configured: float
    empirical: float | None
    calibrated: float
    sample_size: int
    wins: int


class Calibrated(BaseModel):
    forecast: float
    method: str = Field(description='"beta-shrinkage": (wins + w x p0) / (n + w) per stage')
    sample_size: int = Field(description="resolved deals (won or lost) in the team's history")
    prior_weight: float | None = None
    stages: list[CalibratedStage] = []


class Unstaged(BaseModel):
    count: int
    value: float
    stages: list[int]


class Remapped(BaseModel):
    from_stage: int
    to_stage: int
    count: int
    value: float


class ForecastOut(BaseModel):
    scope: str = Field(description='"company", "team:<id>" or "owner:<id>"')
    stages: list[ForecastStageRow]
    active_count: int
    min_active: int
    reliable: bool
    forecast: float
    calibrated: Calibrated
    unstaged: Unstaged
    remapped: list[Remapped]


class SnapshotOut(BaseModel):
    week: str = Field(description='ISO week, e.g. "2024-W05"')
    week_start: str
    taken_at: str
    forecast: float
    calibrated_forecast: float
    active_count: int
    min_active: int
    reliable: bool


class HistoryOut(BaseModel):
    scope: str
    items: list[SnapshotOut]
    total: int


class MethodErrors(BaseModel):
    mae: float | None
    bias: float | None
    wape: float | None
    mape: float | None
    mape_months: int


class BacktestMonth(BaseModel):
    month: str
    cutoff: str
    end: str
    open_active: int
    configured: float
    calibrated: float
    actual: float
    actual_from_pipeline: float
    error: dict[str, float]
    sample_size: int
    calibrated_probabilities: dict[str, float]


class BacktestOverall(BaseModel):
    months: int
    configured: MethodErrors
    calibrated: MethodErrors


class BacktestOut(BaseModel):
    scope: str
    method: str
    prior_weight: float
    tz: str
    months: list[BacktestMonth]
    overall: BacktestOverall


class JobOut(BaseModel):
    id: str
    kind: Literal["rebuild", "reconcile"]
    state: Literal["queued", "running", "done", "failed"]
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    progress: dict = {}
    result: dict | None = None
    error: str | None = None
