"""The dashboard's HTTP server: JSON endpoints over a storage, and the page that polls them.

Standard library only (``http.server``), one thread per request. The storage is only read: studies and trials
are fetched incrementally (``get_trials(since_seq=...)``) into a per-study cache, so a refresh of a
10,000-trial study transfers only what changed. Figures are the report's (:mod:`lmtune.analysis.plots`),
cached per study change.

Endpoints (all GET):

* ``/`` the page; ``/static/plotly.min.js`` plotly.js from the installed plotly package
* ``/api/studies`` every study with its trial counts by state and best value
* ``/api/studies/NAME/trials?since=SEQ`` trials changed after ``SEQ`` and the new ``seq``
* ``/api/studies/NAME/view?page=P&since=SEQ`` what the study page shows: state counts, the best trial and page
  ``P`` of the trial table (newest first); only ``{"seq", "unchanged": true}`` while the study is at ``SEQ``
* ``/api/studies/NAME/series/KIND`` the data of the page's own plots, decimated on the server (``history``,
  ``intermediate``; see :mod:`lmtune.dashboard.aggregate`)
* ``/api/studies/NAME/trials/NUMBER`` one trial in full (parameters, curve, attributes, failure reason)
* ``/api/studies/NAME/plots/KIND`` a plotly figure as JSON (``history``, ``intermediate``, ``parallel``,
  ``slice``, ``contour``, ``timeline``, ``importance``)

Every request must name an allowed host in its ``Host`` header (the bound address, ``localhost``, ``127.0.0.1``,
``::1`` and any names given with ``allowed_hosts``); others get 403. A web page on another site that re-points its
own name at this machine (DNS rebinding) sends its own name, so it cannot read the studies.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from lmtune.dashboard.aggregate import curve_series, history_series, study_view, trial_row
from lmtune.exceptions import LmtuneError, StudyNotFoundError
from lmtune.history import TrialHistory
from lmtune.space import SearchSpace
from lmtune.storage import Storage, get_storage
from lmtune.storage.base import StudyInfo
from lmtune.trial import TrialRecord, TrialState

__all__ = ["PLOT_KINDS", "DashboardData", "allowed_host_names", "make_server", "serve"]

logger = logging.getLogger("lmtune.dashboard")

PLOT_KINDS = ("history", "intermediate", "parallel", "slice", "contour", "timeline", "importance")
SERIES_KINDS = ("history", "intermediate")
PAGE_ROWS = 100  # rows of the trial table per page
IMPORTANCE_MAX_TRIALS = 1000  # the dashboard's importance subsamples larger studies to answer quickly


@dataclass
class _StudyCache:
    info: StudyInfo
    records: dict[int, TrialRecord] = field(default_factory=dict)
    seq: int = -1
    figures: dict[str, tuple[int, str]] = field(default_factory=dict)
    all_trials: tuple[int, str] | None = None
    history: tuple[int, TrialHistory] | None = None
    views: dict[int, tuple[int, str]] = field(default_factory=dict)  # page -> (seq, JSON)
    series: dict[str, tuple[int, str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _summary(record: TrialRecord) -> dict[str, Any]:
    """A row of the trial table with the change counter of its last write (for ``trials?since=``)."""
    return {**trial_row(record), "seq": record.seq}


class DashboardData:
    """Read-only views of the storage for the endpoints; safe to share between request threads."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._studies: dict[str, _StudyCache] = {}
        self._lock = threading.Lock()

    def _cache(self, name: str) -> _StudyCache:
        info = self.storage.get_study(name)
        with self._lock:
            cache = self._studies.get(name)
            if cache is None or cache.info.study_id != info.study_id:  # new, or deleted and created again
                cache = self._studies[name] = _StudyCache(info)
        return cache

    def _refresh(self, name: str) -> _StudyCache:
        cache = self._cache(name)
        with cache.lock:
            for record in self.storage.get_trials(cache.info.study_id, since_seq=cache.seq):
                cache.records[record.number] = record
                cache.seq = max(cache.seq, record.seq)
        return cache

    def history(self, name: str) -> TrialHistory:
        return self._history_at(name)[1]

    def _history_at(self, name: str) -> tuple[int, TrialHistory]:
        """The study's change counter and its trials at that count (rebuilt only after a change)."""
        cache = self._refresh(name)
        with cache.lock:
            if cache.history is None or cache.history[0] != cache.seq:
                space = SearchSpace.from_json(cache.info.space) if cache.info.space else None
                records = tuple(cache.records[n] for n in sorted(cache.records))
                cache.history = (cache.seq, TrialHistory(records, cache.info.direction, space))
            return cache.history

    def view(self, name: str, page: int, since: int) -> str:
        """JSON of the study page's data (see :func:`~lmtune.dashboard.aggregate.study_view`), kept per change."""
        seq, history = self._history_at(name)
        cache = self._cache(name)
        if since == seq:
            return json.dumps({"seq": seq, "unchanged": True})
        known = cache.views.get(page)
        if known is not None and known[0] == seq:
            return known[1]
        text = json.dumps({"study": name, "seq": seq, **study_view(history, page, PAGE_ROWS)})
        cache.views[page] = (seq, text)
        return text

    def series(self, name: str, kind: str) -> str:
        """JSON of a plot the page draws itself, decimated (see :mod:`lmtune.dashboard.aggregate`)."""
        if kind not in SERIES_KINDS:
            raise KeyError(f"unknown series {kind!r}; choose one of {list(SERIES_KINDS)}")
        seq, history = self._history_at(name)
        cache = self._cache(name)
        known = cache.series.get(kind)
        if known is not None and known[0] == seq:
            return known[1]
        data = history_series(history) if kind == "history" else curve_series(history)
        text = json.dumps({"seq": seq, "direction": history.direction, **data})
        cache.series[kind] = (seq, text)
        return text

    def studies(self) -> list[dict[str, Any]]:
        out = []
        for info in self.storage.list_studies():
            history = self.history(info.name)
            counts = Counter(r.state.value for r in history)
            best = history.best()
            out.append(
                {
                    "name": info.name,
                    "direction": info.direction,
                    "n_trials": len(history),
                    "states": {s.value: counts.get(s.value, 0) for s in TrialState},
                    "best_value": None if best is None else best.value,
                    "best_number": None if best is None else best.number,
                    "created_at": info.created_at,
                }
            )
        return out

    def trials(self, name: str, since: int) -> str:
        """JSON of the trials changed after ``since`` (all of them for -1, the first load: kept per change)."""
        cache = self._refresh(name)
        with cache.lock:
            seq = cache.seq
            if since < 0 and cache.all_trials is not None and cache.all_trials[0] == seq:
                return cache.all_trials[1]
            changed = [_summary(r) for n, r in sorted(cache.records.items()) if r.seq > since]
        text = json.dumps({"study": name, "direction": cache.info.direction, "seq": seq, "trials": changed})
        if since < 0:
            cache.all_trials = (seq, text)
        return text

    def trial(self, name: str, number: int) -> dict[str, Any]:
        cache = self._refresh(name)
        with cache.lock:
            record = cache.records.get(number)
        if record is None:
            raise KeyError(f"study {name!r} has no trial {number}")
        return record.to_dict()

    def figure(self, name: str, kind: str) -> str:
        """The figure as plotly JSON, rebuilt only when the study changed since it was last drawn."""
        if kind not in PLOT_KINDS:
            raise KeyError(f"unknown plot {kind!r}; choose one of {list(PLOT_KINDS)}")
        history = self.history(name)
        cache = self._cache(name)
        seq = cache.seq
        cached = cache.figures.get(kind)
        if cached is not None and cached[0] == seq and kind != "timeline":  # running bars grow with time
            return cached[1]
        text = _draw(history, kind)
        cache.figures[kind] = (seq, text)
        return text


def _draw(history: TrialHistory, kind: str) -> str:
    from lmtune.analysis import plots
    from lmtune.analysis.importance import fanova_importance

    if kind == "importance":
        try:
            result = fanova_importance(history, seeds=(0, 1), n_trees=16, max_trials=IMPORTANCE_MAX_TRIALS)
        except LmtuneError as exc:
            return plots.message_figure("Parameter importance", str(exc)).to_json()
        return plots.plot_importance(result).to_json()
    draw: dict[str, Callable[[TrialHistory], Any]] = {
        "history": plots.plot_history,
        "intermediate": plots.plot_intermediate,
        "parallel": plots.plot_parallel_coordinates,
        "slice": plots.plot_slice,
        "contour": plots.plot_contour,
        "timeline": plots.plot_timeline,
    }
    return draw[kind](history).to_json()


LOCAL_HOST_NAMES = ("localhost", "127.0.0.1", "::1")


def allowed_host_names(host: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """Host names the server answers to: the local names, the bound ``host`` and ``extra`` (``*``: any)."""
    return frozenset(_host_name(name) for name in (*LOCAL_HOST_NAMES, host, *extra))


def _host_name(header: str) -> str:
    """The name in a ``Host`` header value, without port or IPv6 brackets, lower case."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    if value.count(":") == 1:
        return value.rsplit(":", 1)[0]
    return value


class _Handler(BaseHTTPRequestHandler):
    data: DashboardData  # set on the subclass made by make_server
    allowed_hosts: frozenset[str]  # likewise
    server_version = "lmtune-dashboard"

    def _host_allowed(self) -> bool:
        if "*" in self.allowed_hosts:
            return True
        header = self.headers.get("Host")
        if header is not None and _host_name(header) in self.allowed_hosts:
            return True
        self._json(
            {
                "error": f"Host header {header!r} is not allowed; to serve this name, start the dashboard with "
                f"--allow-host NAME (allowed: {', '.join(sorted(self.allowed_hosts))})"
            },
            HTTPStatus.FORBIDDEN,
        )
        return False

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def _send(self, status: int, body: bytes, content_type: str, cache: str = "no-store") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", cache)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, payload: Any, status: int = HTTPStatus.OK) -> None:
        body = payload.encode() if isinstance(payload, str) else json.dumps(payload, default=str).encode()
        self._send(status, body, "application/json")

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        if not self._host_allowed():
            return
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.split("/") if p]
        query = parse_qs(url.query)
        try:
            self._route(parts, query)
        except (KeyError, StudyNotFoundError) as exc:
            self._json({"error": str(exc).strip("'\"")}, HTTPStatus.NOT_FOUND)
        except (ValueError, LmtuneError) as exc:
            self._json({"error": str(exc)}, HTTPStatus.BAD_REQUEST)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _route(self, parts: list[str], query: dict[str, list[str]]) -> None:
        from lmtune.dashboard.page import PAGE, plotly_js

        if not parts:
            self._send(HTTPStatus.OK, PAGE.encode(), "text/html; charset=utf-8")
        elif parts == ["static", "plotly.min.js"]:
            self._send(HTTPStatus.OK, plotly_js(), "application/javascript", cache="max-age=86400")
        elif parts == ["api", "studies"]:
            self._json(self.data.studies())
        elif len(parts) == 4 and parts[:2] == ["api", "studies"] and parts[3] == "trials":
            self._json(self.data.trials(parts[2], int(query.get("since", ["-1"])[0])))
        elif len(parts) == 5 and parts[:2] == ["api", "studies"] and parts[3] == "trials":
            self._json(self.data.trial(parts[2], int(parts[4])))
        elif len(parts) == 5 and parts[:2] == ["api", "studies"] and parts[3] == "plots":
            self._json(self.data.figure(parts[2], parts[4]))
        elif len(parts) == 4 and parts[:2] == ["api", "studies"] and parts[3] == "view":
            page, since = int(query.get("page", ["0"])[0]), int(query.get("since", ["-1"])[0])
            self._json(self.data.view(parts[2], page, since))
        elif len(parts) == 5 and parts[:2] == ["api", "studies"] and parts[3] == "series":
            self._json(self.data.series(parts[2], parts[4]))
        else:
            raise KeyError(f"no page at /{'/'.join(parts)}")


def make_server(
    storage: str | Storage, host: str = "127.0.0.1", port: int = 8080, allowed_hosts: Iterable[str] = ()
) -> ThreadingHTTPServer:
    """A server bound to ``host:port`` (port 0: a free one, see ``server.server_address``); not yet serving.

    It answers only requests whose ``Host`` header names ``host``, a local name or one of ``allowed_hosts``."""
    data = DashboardData(get_storage(storage, read_only=True))
    names = allowed_host_names(host, allowed_hosts)
    handler = type("DashboardHandler", (_Handler,), {"data": data, "allowed_hosts": names})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def _warm_up(data: DashboardData) -> None:
    """Read every study's trials and prepare what its page shows first, then import plotting and read plotly.js,
    in the background, so the first page view does not wait for them."""
    try:
        for study in data.studies():
            data.view(study["name"], 0, -1)
            for kind in SERIES_KINDS:
                data.series(study["name"], kind)
        from lmtune.analysis import plots  # noqa: F401
        from lmtune.dashboard.page import plotly_js

        plotly_js()
    except Exception:  # the request that needs them reports the problem
        logger.debug("warm-up failed", exc_info=True)


def serve(
    storage: str | Storage, host: str = "127.0.0.1", port: int = 8080, allowed_hosts: Iterable[str] = ()
) -> None:
    """Serve the dashboard until Ctrl-C."""
    server = make_server(storage, host, port, allowed_hosts)
    data = server.RequestHandlerClass.data  # type: ignore[attr-defined]
    threading.Thread(target=_warm_up, args=(data,), name="lmtune-dashboard-warm-up", daemon=True).start()
    bound_host, bound_port = server.server_address[:2]
    print(f"lmtune dashboard on http://{bound_host}:{bound_port}/ (Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
