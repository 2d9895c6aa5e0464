"""A fitted candidate: the preparation pipeline and the model, both fitted on the training rows only."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trainwell.data.prepared import Prepared
from trainwell.models.registry import Model, model_tags


@dataclass
class Fitted:
    """A model and its preparation pipeline, both fitted on the training rows only."""

    name: str
    params: dict[str, Any]
    model: Model
    preparer: Any
    features: list[str]  # input columns the preparer reads
    fit_rows: np.ndarray  # the rows the preparer (and model) were fitted on: evidence for the guarantees
    notes: dict[str, Any] = field(default_factory=dict)  # what fitting decided on the way (an unsupervised sweep)

    def transform(self, prep: Prepared, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.preparer.transform(prep.frame.iloc[rows][self.features]), np.float32)

    def outputs(self, prep: Prepared, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(predictions, probabilities or None) for `rows`; a per-group mitigation also reads their groups.

        The one gate to the model's answers on the prepared data: a call that touches a test row is counted.
        """
        if prep.test_rows is not None and np.isin(rows, prep.test_rows).any():
            prep.test_evaluations += 1
        X = self.transform(prep, rows)
        if not prep.supervised:  # (clusters, None), (anomaly flags, scores) or (components, None)
            return self.model.outputs(X)  # type: ignore[attr-defined]
        if model_tags(self.model).needs_groups:  # per-group thresholds decide by the rows' groups
            groups = prep.frame.iloc[rows][prep.sensitive]
            return self.model.predict(X, sensitive_features=groups), self.model.predict_proba(  # type: ignore[call-arg]
                X, sensitive_features=groups)  # fmt: skip
        return self.model.predict(X), self.model.predict_proba(X)


Outputs = dict[str, tuple[np.ndarray, np.ndarray | None]]
