"""fmnist_core.sklearn.FashionMNISTClassifier inside scikit-learn's own machinery: cross-validation,
a grid search over the learning rate, a Pipeline, and check_estimator (fmnist-core[sklearn])."""

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn", reason="scikit-learn is the fmnist-core[sklearn] extra")

from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer  # noqa: E402
from sklearn.utils.estimator_checks import check_estimator  # noqa: E402

from fmnist_core.sklearn import FashionMNISTClassifier  # noqa: E402

# scikit-learn's checks fit on small random (n, k) data; images are 28 x 28 = 784 features
FIXED_SIZE = (
    "the check fits on (n, k) data with k != 784, and X must be 28 x 28 images, "
    "(n, 784) or (n, 28, 28): a fixed-size image classifier cannot apply it"
)
EXPECTED_FAILURES = {
    name: FIXED_SIZE
    for name in (
        "check_classifier_data_not_an_array",
        "check_classifiers_classes",
        "check_classifiers_one_label",
        "check_classifiers_regression_target",
        "check_classifiers_train",
        "check_dict_unchanged",
        "check_dont_overwrite_parameters",
        "check_dtype_object",
        "check_estimators_dtypes",
        "check_estimators_empty_data_messages",
        "check_estimators_fit_returns_self",
        "check_estimators_nan_inf",
        "check_estimators_overwrite_params",
        "check_estimators_pickle",
        "check_f_contiguous_array_estimator",
        "check_fit2d_1feature",
        "check_fit2d_1sample",
        "check_fit2d_predict1d",
        "check_fit_check_is_fitted",
        "check_fit_idempotent",
        "check_fit_score_takes_y",
        "check_methods_sample_order_invariance",
        "check_methods_subset_invariance",
        "check_n_features_in",
        "check_n_features_in_after_fitting",
        "check_pipeline_consistency",
        "check_positive_only_tag_during_fit",
        "check_readonly_memmap_input",
        "check_supervised_y_2d",
    )
}


@pytest.fixture(scope="module")
def data(real_data_dir_module):
    from fmnist_core import load_dataset

    real = load_dataset(real_data_dir_module)
    x = real.train.images[:10000].reshape(10000, 784)
    return (
        x,
        real.train.labels[:10000],
        real.test.images[:1000].reshape(1000, 784),
        real.test.labels[:1000],
    )


@pytest.fixture(scope="module")
def real_data_dir_module():
    from tests.conftest import REAL_DATA

    return REAL_DATA


def test_fit_predict_score_and_params(data):
    x, y, xt, yt = data
    model = FashionMNISTClassifier(epochs=3).fit(x, y)
    assert list(model.classes_) == list(range(10)) and model.n_features_in_ == 784
    assert model.score(xt, yt) > 0.7
    probabilities = model.predict_proba(xt[:5])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-6)
    assert (model.predict(xt[:5]) == model.classes_[probabilities.argmax(1)]).all()
    assert model.get_params()["epochs"] == 3 and model.set_params(epochs=1).epochs == 1


def test_cross_val_score(data):
    x, y, _, _ = data
    model = FashionMNISTClassifier(epochs=2, optimizer="adam", learning_rate=0.003)
    scores = cross_val_score(model, x, y, cv=3)
    print("cross_val_score, 3 folds of 10,000 images, 2 epochs of Adam:", np.round(scores, 4))
    assert len(scores) == 3 and scores.min() > 0.7


def test_grid_search_over_the_learning_rate(data):
    x, y, xt, yt = data
    search = GridSearchCV(FashionMNISTClassifier(epochs=2), {"learning_rate": [0.001, 0.1]}, cv=2)
    search.fit(x, y)
    print("grid search:", search.best_params_, round(search.best_score_, 4))
    assert search.best_params_ == {"learning_rate": 0.1} and search.score(xt, yt) > 0.7


def test_in_a_pipeline_with_float_images_and_other_labels(data):
    x, y, xt, yt = data
    names = np.array(
        ["top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]
    )
    pipeline = Pipeline(
        [
            ("scale", FunctionTransformer(lambda v: v.astype(np.float32) / 255)),
            ("fmnist", FashionMNISTClassifier(epochs=2, optimizer="adam", learning_rate=0.003)),
        ]
    )
    pipeline.fit(x, names[y])
    assert set(pipeline.classes_) == set(names) and pipeline.score(xt, names[yt]) > 0.7


def test_check_estimator_passes_but_for_the_checks_of_non_image_data():
    check_estimator(FashionMNISTClassifier(epochs=1), expected_failed_checks=EXPECTED_FAILURES)
