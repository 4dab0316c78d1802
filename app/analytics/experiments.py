"""A/B experiments: configuration, sticky assignment, exposure and results.

Experiments are configuration (``experiments.toml`` next to this module, or
``ANALYTICS_EXPERIMENTS`` in the app config), not data: a variant's markup lives
in a template, so a new experiment ships with code anyway.

A participant is a signed-in user or, before sign-up, a visitor token; the
visitor's assignment moves to the account when they sign up. The variant is
drawn from a hash of experiment and participant (so it is stable even before the
row exists) and stored at first exposure, so changing the weights later never
moves anyone. Exposure is recorded only when a template actually shows a variant
(:func:`variant_for`); conversions count only goal events after that moment.
Site admins and bots are never enrolled: they see the control.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import tomllib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from flask import current_app, g
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import db
from app.analytics.experiment_models import Assignment

log = logging.getLogger(__name__)

CONFIG_FILE = Path(__file__).with_name("experiments.toml")
STATUSES = ("draft", "running", "stopped")
SRM_THRESHOLD = 0.001
_NAME = re.compile(r"[a-z][a-z0-9_]{0,99}")


class ExperimentConfigError(ValueError):
    """The experiments configuration is wrong; the message says where."""


@dataclass(frozen=True)
class Experiment:
    name: str
    variants: tuple[str, ...]
    weights: tuple[float, ...]
    goals: tuple[str, ...]
    status: str = "running"
    start: date | None = None
    end: date | None = None
    description: str = ""

    @property
    def control(self) -> str:
        return self.variants[0]

    def is_enrolling(self, now: datetime) -> bool:
        if self.status != "running":
            return False
        today = now.astimezone(UTC).date()
        if self.start and today < self.start:
            return False
        return not (self.end and today > self.end)

    @property
    def ends_at(self) -> datetime | None:
        """The first instant after the experiment (UTC), for counting conversions."""
        if self.end is None:
            return None
        return datetime.combine(self.end, time(0), UTC) + timedelta(days=1)

    def choose(self, participant: str) -> str:
        """The variant the hash of (experiment, participant) falls into, by weight."""
        digest = hashlib.sha256(f"{self.name}:{participant}".encode()).digest()
        point = int.from_bytes(digest[:8], "big") / 2**64 * sum(self.weights)
        for variant, weight in zip(self.variants, self.weights, strict=True):
            if point < weight:
                return variant
            point -= weight
        return self.variants[-1]


def parse_config(raw: dict[str, Any]) -> dict[str, Experiment]:
    """Validate the ``[experiments.<name>]`` tables (raises :class:`ExperimentConfigError`)."""
    experiments: dict[str, Experiment] = {}
    for name, spec in (raw.get("experiments") or {}).items():
        where = f"experiment {name!r}"
        if not _NAME.fullmatch(name):
            raise ExperimentConfigError(f"{where}: names are lower_snake_case")
        variants = tuple(spec.get("variants") or ())
        if len(variants) < 2 or len(set(variants)) != len(variants):
            raise ExperimentConfigError(f"{where}: give two or more distinct variants")
        weights = tuple(float(w) for w in spec.get("weights") or [1] * len(variants))
        if len(weights) != len(variants) or any(w <= 0 for w in weights):
            raise ExperimentConfigError(f"{where}: one positive weight per variant")
        goals = tuple(spec.get("goals") or ())
        if not goals:
            raise ExperimentConfigError(f"{where}: name at least one goal event")
        status = spec.get("status", "running")
        if status not in STATUSES:
            raise ExperimentConfigError(f"{where}: status is one of {', '.join(STATUSES)}")
        start, end = spec.get("start"), spec.get("end")
        for label, value in (("start", start), ("end", end)):
            if value is not None and not isinstance(value, date):
                raise ExperimentConfigError(f"{where}: {label} is a date like 2026-12-01")
        if start and end and end < start:
            raise ExperimentConfigError(f"{where}: end is before start")
        experiments[name] = Experiment(
            name=name,
            variants=variants,
            weights=weights,
            goals=goals,
            status=status,
            start=start,
            end=end,
            description=str(spec.get("description", "")),
        )
    return experiments


def load_experiments() -> dict[str, Experiment]:
    """The configured experiments.

    ``ANALYTICS_EXPERIMENTS`` (a dict in the app config) overrides the file; the file
    is ``ANALYTICS_EXPERIMENTS_FILE`` (config or environment) or the one shipped here,
    re-read when it changes.
    """
    configured = current_app.config.get("ANALYTICS_EXPERIMENTS")
    if configured is not None:
        return parse_config({"experiments": configured})
    cache = current_app.extensions.setdefault("quire.experiments", {})
    path = Path(
        current_app.config.get("ANALYTICS_EXPERIMENTS_FILE")
        or os.environ.get("ANALYTICS_EXPERIMENTS_FILE")
        or CONFIG_FILE
    )
    mtime = path.stat().st_mtime if path.exists() else None
    if cache.get("key") != (path, mtime):
        raw = tomllib.loads(path.read_text()) if mtime is not None else {}
        cache.update(key=(path, mtime), experiments=parse_config(raw))
    return cache["experiments"]


# --- who takes part -------------------------------------------------------------------


@dataclass(frozen=True)
class Participant:
    user_id: int | None
    visitor_token: str | None

    @property
    def key(self) -> str:
        return (
            f"user:{self.user_id}" if self.user_id is not None else f"visitor:{self.visitor_token}"
        )


def visitor_token() -> str | None:
    """The current request's visitor token; None when the request may not be tracked."""
    from app.analytics import tracking

    try:
        context = tracking.current_visit()
    except Exception:  # noqa: BLE001 - no token is a valid answer
        log.warning("could not read the visitor token", exc_info=True)
        return None
    return context.visitor_token if context is not None else None


def current_participant() -> Participant | None:
    """Who this request would enrol, or None: site admins, and every request that may
    not be tracked (bots, Do Not Track, opted out), since their conversions would
    never be seen."""
    from app.analytics import tracking

    actor = g.get("actor")
    if actor is not None and getattr(actor, "is_admin", False):
        return None
    if not tracking.request_allows_tracking():
        return None
    token = visitor_token()
    if actor is not None:
        return Participant(actor.id, token)
    return Participant(None, token) if token else None


# --- assignment and exposure ----------------------------------------------------------


def assign(
    session: Session, experiment: Experiment, participant: Participant, *, expose: bool = True
) -> str:
    """The participant's stored variant, storing (and exposing) it the first time."""
    now = datetime.now(UTC)
    row = _find(session, experiment.name, participant)
    if row is None:
        row = Assignment(
            experiment=experiment.name,
            variant=experiment.choose(participant.key),
            user_id=participant.user_id,
            visitor_token=None if participant.user_id is not None else participant.visitor_token,
            assigned_at=now,
            exposed_at=now if expose else None,
        )
        session.add(row)
        try:
            session.commit()
        except IntegrityError:  # another request of the same person got there first
            session.rollback()
            row = _find(session, experiment.name, participant)
            assert row is not None
    elif expose and row.exposed_at is None:
        row.exposed_at = now
        session.commit()
    return row.variant


def _find(session: Session, name: str, participant: Participant) -> Assignment | None:
    if participant.user_id is not None:
        row = session.scalar(
            select(Assignment).where(
                Assignment.experiment == name, Assignment.user_id == participant.user_id
            )
        )
        if row is not None or not participant.visitor_token:
            return row
        # Enrolled as a visitor before signing up: the assignment moves to the account.
        claim(session, participant.user_id, participant.visitor_token)
        return session.scalar(
            select(Assignment).where(
                Assignment.experiment == name, Assignment.user_id == participant.user_id
            )
        )
    return session.scalar(
        select(Assignment).where(
            Assignment.experiment == name,
            Assignment.visitor_token == participant.visitor_token,
            Assignment.user_id.is_(None),
        )
    )


def claim(session: Session, user_id: int, token: str) -> int:
    """Carry a visitor's assignments over to the account they just signed up for.

    Experiments in which the account already has an assignment keep that one.
    """
    taken = select(Assignment.experiment).where(Assignment.user_id == user_id)
    moved = session.execute(
        update(Assignment)
        .where(
            Assignment.visitor_token == token,
            Assignment.user_id.is_(None),
            Assignment.experiment.not_in(taken.scalar_subquery()),
        )
        .values(user_id=user_id)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    return int(moved or 0)


def on_signed_up(user_id: int, token: str | None) -> None:
    """The ``signed_up`` hook: never fails the sign-up."""
    if not token:
        return
    try:
        claim(db.session(), user_id, token)
    except Exception:  # noqa: BLE001 - analytics never breaks a request
        db.session().rollback()
        log.warning("could not carry experiment assignments over", exc_info=True)


def variant_for(name: str) -> str:
    """Template helper: the variant to show now, recording the exposure.

    Unknown, draft, stopped or finished experiments, admins, bots and visitors
    without a token see the control and are not recorded. Never raises.
    """
    try:
        experiment = load_experiments().get(name)
    except Exception:  # noqa: BLE001
        log.warning("experiments configuration unreadable", exc_info=True)
        return ""
    if experiment is None:
        return ""
    if not experiment.is_enrolling(datetime.now(UTC)):
        return experiment.control
    try:
        participant = current_participant()
        if participant is None:
            return experiment.control
        return assign(db.session(), experiment, participant)
    except Exception:  # noqa: BLE001 - a broken experiment shows the control, never a 500
        db.session().rollback()
        log.warning("experiment %s: assignment failed", name, exc_info=True)
        return experiment.control


# --- statistics -----------------------------------------------------------------------


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def probability_to_beat(
    control_conversions: int, control_n: int, variant_conversions: int, variant_n: int
) -> float:
    """P(rate_variant > rate_control) under Beta(1, 1) priors, in closed form.

    With A ~ Beta(a1, b1) and B ~ Beta(a2, b2) (a = 1 + conversions,
    b = 1 + failures), P(B > A) = sum over i < a2 of
    B(a1 + i, b1 + b2) / ((b2 + i) B(1 + i, b2) B(a1, b1)). The sum has a2 terms,
    so it runs over whichever side converted less (P(A > B) = 1 - P(B > A)); past
    100,000 terms a normal approximation is already exact to far below 0.001.
    """
    a1, b1 = 1 + control_conversions, 1 + control_n - control_conversions
    a2, b2 = 1 + variant_conversions, 1 + variant_n - variant_conversions
    if min(a1, a2) > 100_000:
        mean = a2 / (a2 + b2) - a1 / (a1 + b1)
        var = a1 * b1 / ((a1 + b1) ** 2 * (a1 + b1 + 1)) + a2 * b2 / (
            (a2 + b2) ** 2 * (a2 + b2 + 1)
        )
        return 0.5 * math.erfc(-mean / math.sqrt(2 * var))
    if a2 > a1:
        return 1.0 - _beats(a2, b2, a1, b1)
    return _beats(a1, b1, a2, b2)


def _beats(a1: int, b1: int, a2: int, b2: int) -> float:
    """P(B > A) for A ~ Beta(a1, b1), B ~ Beta(a2, b2): a2 terms."""
    base = _log_beta(a1, b1)
    total = 0.0
    for i in range(a2):
        total += math.exp(
            _log_beta(a1 + i, b1 + b2) - math.log(b2 + i) - _log_beta(1 + i, b2) - base
        )
    return min(1.0, max(0.0, total))


def z_test(
    control_conversions: int, control_n: int, variant_conversions: int, variant_n: int
) -> tuple[float | None, float | None]:
    """Two-proportion z-test with the pooled rate: (z, two-sided p-value)."""
    if not control_n or not variant_n:
        return None, None
    p1, p2 = control_conversions / control_n, variant_conversions / variant_n
    pooled = (control_conversions + variant_conversions) / (control_n + variant_n)
    se = math.sqrt(pooled * (1 - pooled) * (1 / control_n + 1 / variant_n))
    if se == 0:
        return None, None
    z = (p2 - p1) / se
    return z, math.erfc(abs(z) / math.sqrt(2))


def chi_square_p(statistic: float, df: int) -> float:
    """Upper tail of the chi-square distribution: Q(df / 2, statistic / 2)."""
    return _gamma_q(df / 2, statistic / 2)


def _gamma_q(a: float, x: float) -> float:
    """The regularized upper incomplete gamma function Q(a, x)."""
    if x <= 0:
        return 1.0
    log_front = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1:  # the series for P converges fast here
        term = total = 1.0 / a
        n = a
        for _ in range(1000):
            n += 1
            term *= x / n
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(log_front))
    # Otherwise Q's continued fraction (modified Lentz).
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return min(1.0, h * math.exp(log_front))


def srm_p_value(observed: list[int], weights: list[float]) -> float | None:
    """Chi-square test of the participants per variant against the configured weights."""
    total = sum(observed)
    if total == 0 or len(observed) < 2:
        return None
    expected = [total * w / sum(weights) for w in weights]
    statistic = sum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True))
    return chi_square_p(statistic, len(observed) - 1)


# --- results --------------------------------------------------------------------------


@dataclass
class VariantResult:
    name: str
    weight: float
    participants: int
    conversions: int
    is_control: bool
    probability_to_beat_control: float | None = None
    z: float | None = None
    p_value: float | None = None

    @property
    def rate(self) -> float | None:
        return self.conversions / self.participants if self.participants else None


@dataclass
class ExperimentResult:
    experiment: Experiment
    variants: list[VariantResult]
    srm_p_value: float | None

    @property
    def srm_warning(self) -> bool:
        return self.srm_p_value is not None and self.srm_p_value < SRM_THRESHOLD

    @property
    def participants(self) -> int:
        return sum(v.participants for v in self.variants)


def participant_counts(session: Session, experiment: Experiment) -> dict[str, tuple[int, int]]:
    """variant → (exposed participants, of whom converted), staff excluded."""
    names = {f"g{i}": goal for i, goal in enumerate(experiment.goals)}
    goals = "(" + ", ".join(f":{k}" for k in names) + ")"
    ends = experiment.ends_at
    until = " AND e.time < :ends" if ends else ""
    rows = session.execute(
        text(
            "SELECT a.variant, COUNT(*), SUM(CASE WHEN"
            " (a.user_id IS NOT NULL AND EXISTS (SELECT 1 FROM analytics_events e"
            f"   WHERE e.user_id = a.user_id AND e.name IN {goals}"
            f"   AND e.time >= a.exposed_at{until}))"
            " OR (a.user_id IS NULL AND EXISTS (SELECT 1 FROM analytics_events e"
            f"   WHERE e.visitor_token = a.visitor_token AND e.name IN {goals}"
            f"   AND e.time >= a.exposed_at{until}))"
            " THEN 1 ELSE 0 END)"
            " FROM analytics_experiment_assignments a LEFT JOIN users u ON u.id = a.user_id"
            " WHERE a.experiment = :experiment AND a.exposed_at IS NOT NULL"
            " AND (u.id IS NULL OR NOT u.is_admin)"
            " GROUP BY a.variant"
        ),
        {"experiment": experiment.name, "ends": ends, **names},
    ).all()
    return {str(v): (int(n), int(c or 0)) for v, n, c in rows}


def results(session: Session, experiment: Experiment) -> ExperimentResult:
    counts = participant_counts(session, experiment)
    control_n, control_c = counts.get(experiment.control, (0, 0))
    variants = []
    for name, weight in zip(experiment.variants, experiment.weights, strict=True):
        n, c = counts.get(name, (0, 0))
        result = VariantResult(name, weight, n, c, is_control=name == experiment.control)
        if not result.is_control and n and control_n:
            result.probability_to_beat_control = probability_to_beat(control_c, control_n, c, n)
            result.z, result.p_value = z_test(control_c, control_n, c, n)
        variants.append(result)
    srm = srm_p_value([v.participants for v in variants], list(experiment.weights))
    return ExperimentResult(experiment, variants, srm)


def all_results(session: Session) -> list[ExperimentResult]:
    return [results(session, e) for e in load_experiments().values()]
