"""Ensembles as registry models: voting and stacking over classical members, built with scikit-learn.

Members are other registry entries (by name, default parameters unless `member_params` says otherwise),
so an ensemble is declared exactly like any model and saved with skops like any classical one.
Neural members are refused: scikit-learn's ensembles clone and refit members, which our torch wrappers
do not support as estimators.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from trainwell.errors import UserError, did_you_mean
from trainwell.models.classical import Params, SklearnModel
from trainwell.models.registry import BuildContext, create_model, get_spec, list_models, parse_params, register_model

BOTH = ("classification", "regression")
ENSEMBLES = ("voting", "stacking")
# Members when `models` is not given: linear, local and tree-based views of the data, all quick to fit.
DEFAULT_MEMBERS = {
    "classification": ["logistic_regression", "knn", "lightgbm"],
    "regression": ["linear_regression", "knn", "lightgbm"],
}


class EnsembleParams(Params):
    models: list[str] | None = Field(
        None,
        description="Member models by registry name (classical, at least 2); default: a linear model, "
        "knn and lightgbm.",
    )
    member_params: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Parameters per member name, e.g. {knn: {n_neighbors: 15}}."
    )

    @field_validator("models")
    @classmethod
    def _check_members(cls, models: list[str] | None) -> list[str] | None:
        if models is None:
            return None
        if len(models) < 2:
            raise UserError(f"model.models: an ensemble needs at least 2 members (got {models})")
        classical = [s.name for s in list_models() if s.family == "classical" and s.name not in ENSEMBLES]
        for name in models:
            if name in ENSEMBLES:
                raise UserError(f'model.models: "{name}" is an ensemble; members are single models: '
                                + ", ".join(classical))  # fmt: skip
            try:
                spec = get_spec(name)
            except UserError as exc:
                raise UserError(f"model.models: {exc}") from None
            if spec.family != "classical":
                raise UserError(f'model.models: "{name}" is a {spec.family} model; ensemble members are '
                                "classical: " + ", ".join(classical))  # fmt: skip
        return models

    @model_validator(mode="after")
    def _check_member_params(self) -> EnsembleParams:
        for name, params in self.member_params.items():
            if self.models is not None and name not in self.models:
                raise UserError(f'model.member_params: "{name}" is not a member{did_you_mean(name, self.models)}; '
                                f"members: {', '.join(self.models)}")  # fmt: skip
            try:
                parse_params(name, params)
            except UserError as exc:
                raise UserError(f"model.member_params.{name}: {exc}") from None
        return self


class VotingParams(EnsembleParams):
    voting: Literal["soft", "hard"] = Field(
        "soft",
        description="Classification: soft averages member probabilities, hard takes the majority label "
        "(no probabilities). Regression always averages.",
    )
    weights: list[float] | None = Field(None, description="One weight per member (default: equal).")


class StackingParams(EnsembleParams):
    cv: int = Field(5, ge=2, description="Folds used to build the out-of-fold member predictions.")
    passthrough: bool = Field(False, description="Also give the final estimator the original features.")


def members(p: EnsembleParams, ctx: BuildContext) -> list[tuple[str, Any]]:
    """(unique name, unfitted scikit-learn estimator) for each member, built through the registry."""
    names = p.models or DEFAULT_MEMBERS[ctx.task]
    for name in p.member_params:
        if name not in names:
            raise UserError(f'model.member_params: "{name}" is not a member; members: {", ".join(names)}')
    out: list[tuple[str, Any]] = []
    counts: dict[str, int] = {}
    for name in names:
        if ctx.task not in get_spec(name).tasks:
            usable = [s.name for s in list_models() if s.family == "classical" and ctx.task in s.tasks]
            raise UserError(f'model.models: "{name}" does not support {ctx.task}; members that do: '
                            + ", ".join(n for n in usable if n not in ENSEMBLES))  # fmt: skip
        model = create_model(name, p.member_params.get(name, {}), ctx)
        counts[name] = counts.get(name, 0) + 1  # scikit-learn needs unique names: knn, knn_2, ...
        label = name if counts[name] == 1 else f"{name}_{counts[name]}"
        out.append((label, model.estimator))  # type: ignore[attr-defined]
    return out


@register_model(
    "voting", family="classical", tasks=BOTH, params=VotingParams,
    description="Voting ensemble of registry models: soft/hard voting (classification), averaging (regression).",
)  # fmt: skip
def _voting(p: VotingParams, ctx: BuildContext) -> SklearnModel:
    from sklearn.ensemble import VotingClassifier, VotingRegressor

    estimators = members(p, ctx)
    if p.weights is not None and len(p.weights) != len(estimators):
        raise UserError(f"model.weights: give one weight per member ({len(estimators)}), got {len(p.weights)}")
    if ctx.task == "classification":
        est: Any = VotingClassifier(estimators, voting=p.voting, weights=p.weights)
    else:
        est = VotingRegressor(estimators, weights=p.weights)
    return SklearnModel("voting", p.model_dump(mode="json"), est, ctx.task)


@register_model(
    "stacking", family="classical", tasks=BOTH, params=StackingParams,
    description="Stacking ensemble of registry models; a logistic (classification) or ridge (regression) "
    "model learns from their out-of-fold predictions.",
)  # fmt: skip
def _stacking(p: StackingParams, ctx: BuildContext) -> SklearnModel:
    from sklearn.ensemble import StackingClassifier, StackingRegressor
    from sklearn.linear_model import LogisticRegression, RidgeCV

    estimators = members(p, ctx)
    if ctx.task == "classification":
        final: Any = LogisticRegression(max_iter=1000, random_state=ctx.seed)
        est: Any = StackingClassifier(estimators, final_estimator=final, cv=p.cv, passthrough=p.passthrough)
    else:
        final = RidgeCV(alphas=(0.01, 0.1, 1.0, 10.0, 100.0))
        est = StackingRegressor(estimators, final_estimator=final, cv=p.cv, passthrough=p.passthrough)
    return SklearnModel("stacking", p.model_dump(mode="json"), est, ctx.task)
