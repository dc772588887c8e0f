"""Metrics and naive baselines of a model version's predictions, computed with scikit-learn.

Baselines answer "is the model better than doing nothing clever?": the majority class (the
mean for regression) and a seeded uniform-random guess, scored on the same labels.
"""

import hashlib
import io

import numpy as np
import pandas as pd
from django.core.exceptions import ValidationError
from sklearn import metrics as skm
from sklearn.dummy import DummyClassifier, DummyRegressor

from registry.choices import TaskType

RANDOM_BASELINE_SEED = 0
REQUIRED_COLUMNS = ("y_true", "y_pred")


def read_predictions(data: bytes) -> tuple[pd.DataFrame, str]:
    """Parse a predictions CSV (y_true, y_pred, optional y_score) and hash its bytes."""
    if not data:
        raise ValidationError({"predictions": "the file is empty"})
    try:
        frame = pd.read_csv(io.BytesIO(data))
    except UnicodeDecodeError:
        raise ValidationError(
            {"predictions": "not a CSV file: the content is not UTF-8 text"}
        ) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ValidationError({"predictions": f"not a readable CSV file: {exc}"}) from None
    # A header written as "y_true, y_pred" is meant as y_true and y_pred.
    frame.columns = [str(column).strip() for column in frame.columns]
    missing = [column for column in REQUIRED_COLUMNS if column not in frame.columns]
    if missing:
        raise ValidationError(
            {
                "predictions": f"missing column(s) {', '.join(missing)}; found "
                f"{', '.join(map(str, frame.columns)) or 'none'}"
            }
        )
    if frame.empty:
        raise ValidationError({"predictions": "the file has a header but no rows"})
    used = [c for c in ("y_true", "y_pred", "y_score") if c in frame.columns]
    if frame[used].isna().any().any():
        raise ValidationError({"predictions": "y_true, y_pred and y_score may not be empty"})
    if "y_score" in frame.columns and not pd.api.types.is_numeric_dtype(frame["y_score"]):
        raise ValidationError({"predictions": "y_score must be a number on every row"})
    if pd.api.types.is_numeric_dtype(frame["y_true"]) != pd.api.types.is_numeric_dtype(
        frame["y_pred"]
    ):
        raise ValidationError(
            {
                "predictions": "y_true and y_pred must use the same kind of labels "
                "(both numbers or both text)"
            }
        )
    return frame, hashlib.sha256(data).hexdigest()


def _classification(y_true, y_pred, y_score, *, binary: bool) -> dict[str, float]:
    average = "binary" if binary else "macro"
    kwargs = {"average": average, "zero_division": 0}
    if binary:
        kwargs["pos_label"] = _positive_label(y_true, y_pred)
    out = {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "balanced_accuracy": skm.balanced_accuracy_score(y_true, y_pred),
        "precision": skm.precision_score(y_true, y_pred, **kwargs),
        "recall": skm.recall_score(y_true, y_pred, **kwargs),
        "f1": skm.f1_score(y_true, y_pred, **kwargs),
    }
    if binary and y_score is not None and len(np.unique(y_true)) == 2:
        out["roc_auc"] = skm.roc_auc_score(y_true, y_score)
    return {name: float(value) for name, value in out.items()}


def _positive_label(y_true, y_pred):
    labels = np.unique(np.concatenate([np.asarray(y_true), np.asarray(y_pred)]))
    return 1 if 1 in labels else labels.max()


def _regression(y_true, y_pred) -> dict[str, float]:
    return {
        "mae": float(skm.mean_absolute_error(y_true, y_pred)),
        "rmse": float(np.sqrt(skm.mean_squared_error(y_true, y_pred))),
        "r2": float(skm.r2_score(y_true, y_pred)),
    }


def compute(frame: pd.DataFrame, task_type: str) -> tuple[dict, dict]:
    """Return (metrics, baselines) for the predictions in `frame`."""
    y_true = frame["y_true"].to_numpy()
    y_pred = frame["y_pred"].to_numpy()
    y_score = frame["y_score"].to_numpy() if "y_score" in frame.columns else None
    placeholder = np.zeros((len(y_true), 1))  # dummy estimators ignore the features
    if task_type == TaskType.REGRESSION:
        if not (np.issubdtype(y_true.dtype, np.number) and np.issubdtype(y_pred.dtype, np.number)):
            raise ValidationError({"predictions": "regression needs numeric y_true and y_pred"})
        mean = DummyRegressor(strategy="mean").fit(placeholder, y_true).predict(placeholder)
        return _regression(y_true, y_pred), {"mean": _regression(y_true, mean)}

    binary = task_type == TaskType.BINARY
    classes = np.unique(y_true)
    if binary and len(np.unique(np.concatenate([classes, np.unique(y_pred)]))) > 2:
        raise ValidationError(
            {
                "predictions": "binary classification allows two labels; found "
                f"{', '.join(map(str, np.unique(np.concatenate([classes, y_pred]))))}"
            }
        )
    metrics = _classification(y_true, y_pred, y_score, binary=binary)
    baselines = {}
    for name, strategy in (("majority_class", "most_frequent"), ("random", "uniform")):
        dummy = DummyClassifier(strategy=strategy, random_state=RANDOM_BASELINE_SEED)
        predicted = dummy.fit(placeholder, y_true).predict(placeholder)
        baselines[name] = _classification(y_true, predicted, None, binary=binary)
    return metrics, baselines
