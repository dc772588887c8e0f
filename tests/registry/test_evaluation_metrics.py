"""Uploaded predictions become metrics and baselines computed with scikit-learn, checked here
against values worked out by hand; bad files are refused with the problem named and leave
nothing behind (no Evaluation row, no stored file)."""

import hashlib
import math
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile

from registry import services
from registry.choices import TaskType
from registry.models import Evaluation
from tests import factories

pytestmark = pytest.mark.django_db

# Ten applicants: four defaulted (1), six repaid (0). The model flags rows 1-3 and 5.
#                 TP TP TP FN FP TN TN TN TN TN
Y_TRUE = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
Y_PRED = [1, 1, 1, 0, 1, 0, 0, 0, 0, 0]
Y_SCORE = [0.9, 0.8, 0.7, 0.3, 0.6, 0.2, 0.1, 0.1, 0.05, 0.4]
BINARY_CSV = "y_true,y_pred,y_score\n" + "".join(
    f"{t},{p},{s}\n" for t, p, s in zip(Y_TRUE, Y_PRED, Y_SCORE, strict=True)
)


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def stored_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


def setup_for(project, actor, *, task_type=TaskType.BINARY, rows=10):
    model = factories.registered_model(project, actor, task_type=task_type)
    version = factories.model_version(model, actor)
    data = factories.dataset_version(project, actor, rows=rows)
    return version, data


def upload(client, version, data, content: bytes, **extra):
    return client.post(
        "/api/v1/evaluations/",
        {
            "model_version": version.pk,
            "dataset_version": data.pk,
            "predictions": SimpleUploadedFile("predictions.csv", content, "text/csv"),
            **extra,
        },
        format="multipart",
    )


def test_binary_metrics_match_the_confusion_matrix(api, project, member, media_root):
    version, data = setup_for(project, member)
    response = upload(api.as_user(member), version, data, BINARY_CSV.encode())
    assert response.status_code == 201, response.json()
    metrics = response.json()["metrics"]

    tp, fn, fp, tn = 3, 1, 1, 5
    assert metrics["accuracy"] == pytest.approx((tp + tn) / 10)  # 0.8
    assert metrics["precision"] == pytest.approx(tp / (tp + fp))  # 0.75
    assert metrics["recall"] == pytest.approx(tp / (tp + fn))  # 0.75
    assert metrics["f1"] == pytest.approx(2 * 0.75 * 0.75 / (0.75 + 0.75))  # 0.75
    assert metrics["balanced_accuracy"] == pytest.approx((tp / 4 + tn / 6) / 2)  # 19/24
    # ROC AUC: of the 4 x 6 (defaulted, repaid) pairs, the defaulter scores higher in 22:
    # 0.9, 0.8 and 0.7 beat all six; 0.3 beats 0.2, 0.1, 0.1, 0.05 but not 0.6 or 0.4.
    assert metrics["roc_auc"] == pytest.approx(22 / 24)


def test_binary_majority_class_baseline_predicts_repaid_for_everyone(api, project, member):
    version, data = setup_for(project, member)
    baselines = upload(api.as_user(member), version, data, BINARY_CSV.encode()).json()["baselines"]
    majority = baselines["majority_class"]
    assert majority["accuracy"] == pytest.approx(6 / 10)
    assert majority["balanced_accuracy"] == pytest.approx(0.5)  # (0/4 + 6/6) / 2
    assert (majority["precision"], majority["recall"], majority["f1"]) == (0, 0, 0)
    random = baselines["random"]
    assert set(random) == {"accuracy", "balanced_accuracy", "precision", "recall", "f1"}
    assert all(0 <= value <= 1 for value in random.values())


def test_random_baseline_is_seeded_and_repeatable(project, member):
    version, data = setup_for(project, member)
    first = services.record_evaluation(
        version, data, actor=member, predictions=ContentFile(BINARY_CSV.encode())
    )
    second = services.record_evaluation(
        version, data, actor=member, predictions=ContentFile(BINARY_CSV.encode())
    )
    assert first.baselines["random"] == second.baselines["random"]


def test_predictions_file_is_stored_with_its_hash(api, project, member, media_root):
    version, data = setup_for(project, member)
    response = upload(api.as_user(member), version, data, BINARY_CSV.encode())
    digest = hashlib.sha256(BINARY_CSV.encode()).hexdigest()
    assert response.json()["predictions_sha256"] == digest
    evaluation = Evaluation.objects.get()
    assert evaluation.predictions.name == f"predictions/{version.pk}/{digest}.csv"
    assert (media_root / evaluation.predictions.name).read_bytes() == BINARY_CSV.encode()


def test_given_baselines_are_kept_beside_the_computed_ones(api, project, member):
    version, data = setup_for(project, member)
    response = upload(
        api.as_user(member),
        version,
        data,
        BINARY_CSV.encode(),
        baselines='{"simple_model": {"accuracy": 0.7}}',
        notes="logistic regression on income only",
    )
    assert response.status_code == 201, response.json()
    baselines = response.json()["baselines"]
    assert set(baselines) == {"majority_class", "random", "simple_model"}
    assert baselines["simple_model"] == {"accuracy": 0.7}


def test_multiclass_metrics_are_macro_averaged(project, member):
    version, data = setup_for(project, member, task_type=TaskType.MULTICLASS, rows=6)
    csv = "y_true,y_pred\na,a\na,b\nb,b\nb,b\nc,c\nc,a\n"
    evaluation = services.record_evaluation(
        version, data, actor=member, predictions=ContentFile(csv.encode())
    )
    metrics = evaluation.metrics
    # Per class (precision, recall): a (1/2, 1/2), b (2/3, 2/2), c (1/1, 1/2).
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["precision"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert metrics["recall"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)
    assert metrics["balanced_accuracy"] == pytest.approx(2 / 3)
    f1_a, f1_b, f1_c = 1 / 2, 2 * (2 / 3) / (2 / 3 + 1), 2 * 0.5 / 1.5
    assert metrics["f1"] == pytest.approx((f1_a + f1_b + f1_c) / 3)
    assert "roc_auc" not in metrics
    # Every class has two rows; the tie goes to the first label, "a": right on 2 of 6.
    assert evaluation.baselines["majority_class"]["accuracy"] == pytest.approx(2 / 6)


def test_regression_metrics_by_hand(project, member):
    version, data = setup_for(project, member, task_type=TaskType.REGRESSION, rows=4)
    csv = "y_true,y_pred\n3,2.5\n-0.5,0\n2,2\n7,8\n"
    evaluation = services.record_evaluation(
        version, data, actor=member, predictions=ContentFile(csv.encode())
    )
    # Errors: 0.5, 0.5, 0, 1. Mean of y_true: 11.5 / 4 = 2.875.
    ss_res = 0.25 + 0.25 + 0 + 1
    ss_tot = 0.125**2 + 3.375**2 + 0.875**2 + 4.125**2  # 29.1875
    assert evaluation.metrics["mae"] == pytest.approx(2.0 / 4)
    assert evaluation.metrics["rmse"] == pytest.approx(math.sqrt(ss_res / 4))
    assert evaluation.metrics["r2"] == pytest.approx(1 - ss_res / ss_tot)
    mean = evaluation.baselines["mean"]
    assert mean["mae"] == pytest.approx((0.125 + 3.375 + 0.875 + 4.125) / 4)
    assert mean["rmse"] == pytest.approx(math.sqrt(ss_tot / 4))
    assert mean["r2"] == pytest.approx(0)


def test_roc_auc_of_a_perfect_ranking_is_one(project, member):
    version, data = setup_for(project, member, rows=4)
    csv = "y_true,y_pred,y_score\n0,0,0.1\n0,0,0.4\n1,1,0.6\n1,1,0.9\n"
    evaluation = services.record_evaluation(
        version, data, actor=member, predictions=ContentFile(csv.encode())
    )
    assert evaluation.metrics["roc_auc"] == 1.0


def test_text_labels_treat_the_later_label_as_positive(project, member):
    version, data = setup_for(project, member, rows=4)
    csv = "y_true,y_pred\nno,no\nno,yes\nyes,yes\nyes,yes\n"
    evaluation = services.record_evaluation(
        version, data, actor=member, predictions=ContentFile(csv.encode())
    )
    assert evaluation.metrics["precision"] == pytest.approx(2 / 3)
    assert evaluation.metrics["recall"] == 1.0


@pytest.mark.parametrize(
    ("content", "rows", "message"),
    [
        (b"", 10, "empty"),
        (b"y_true,y_pred\n", 10, "header but no rows"),
        (b"y_true,y_score\n1,0.9\n0,0.1\n", 2, "missing column(s) y_pred; found y_true, y_score"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x01", 10, "not a CSV file"),
        (b"y_true,y_pred\n0,0\n1,2\n", 2, "binary classification allows two labels; found 0, 1, 2"),
        (BINARY_CSV.encode(), 12, "10 rows, but"),
        (b"y_true,y_pred,y_score\n0,0,low\n1,1,high\n", 2, "y_score must be a number"),
        (b"y_true,y_pred\n0,no\n1,yes\n", 2, "same kind of labels"),
        (b"y_true,y_pred\n0,\n1,1\n", 2, "may not be empty"),
    ],
)
def test_bad_predictions_are_refused_and_leave_nothing(
    api, project, member, media_root, content, rows, message
):
    version, data = setup_for(project, member, rows=rows)
    response = upload(api.as_user(member), version, data, content)
    assert response.status_code == 400
    assert message in " ".join(response.json()["predictions"])
    assert not Evaluation.objects.exists()
    assert stored_files(media_root) == []


def test_row_count_error_names_both_counts(api, project, member):
    version, data = setup_for(project, member, rows=12)
    response = upload(api.as_user(member), version, data, BINARY_CSV.encode())
    assert response.json()["predictions"] == [
        f"10 rows, but {data} has 12: predictions must cover the whole dataset version"
    ]


def test_regression_needs_numeric_values(project, member, media_root):
    version, data = setup_for(project, member, task_type=TaskType.REGRESSION, rows=2)
    with pytest.raises(ValidationError) as excinfo:
        services.record_evaluation(
            version, data, actor=member, predictions=ContentFile(b"y_true,y_pred\na,b\nc,d\n")
        )
    assert "regression needs numeric y_true and y_pred" in excinfo.value.messages
    assert stored_files(media_root) == []


def test_file_is_removed_when_the_record_cannot_be_written(
    project, member, media_root, monkeypatch
):
    version, data = setup_for(project, member)

    def refuse(*args, **kwargs):
        raise ValidationError("lineage refused")

    monkeypatch.setattr(services.recording, "link", refuse)
    with pytest.raises(ValidationError):
        services.record_evaluation(
            version, data, actor=member, predictions=ContentFile(BINARY_CSV.encode())
        )
    assert not Evaluation.objects.exists()
    assert stored_files(media_root) == []


def test_bad_given_metrics_are_refused_before_the_file_is_stored(project, member, media_root):
    version, data = setup_for(project, member)
    with pytest.raises(ValidationError) as excinfo:
        services.record_evaluation(
            version,
            data,
            actor=member,
            metrics={"calibration": "good"},
            predictions=ContentFile(BINARY_CSV.encode()),
        )
    assert "metrics" in excinfo.value.message_dict
    assert stored_files(media_root) == []


def test_evaluation_upload_is_in_the_provenance_graph(project, member):
    from lineage.models import Edge

    version, data = setup_for(project, member)
    evaluation = services.record_evaluation(
        version, data, actor=member, predictions=ContentFile(BINARY_CSV.encode())
    )
    kinds = set(Edge.objects.filter(dst__object_id=evaluation.pk).values_list("kind", flat=True))
    assert kinds == {"evaluated", "used"}
