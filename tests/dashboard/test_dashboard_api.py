"""The dashboard's JSON endpoints over a real SQLite storage, through a real HTTP server."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import lmtune
from lmtune.dashboard import make_server
from lmtune.samplers import RandomSampler
from lmtune.trial import TrialState


def _objective(trial: lmtune.Trial) -> float:
    x = trial.suggest_float("x", -2, 2)
    trial.report(x * x + 1, 0)
    if trial.number == 2:
        raise ValueError("bad batch")
    return x * x


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, lmtune.Study]]:
    url = f"sqlite:///{tmp_path / 'api.db'}"
    study = lmtune.create_study(storage=url, study_name="a/b c", sampler=RandomSampler(seed=0))
    study.optimize(_objective, n_trials=5)
    server = make_server(url, port=0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield f"http://{host}:{port}", study
    finally:
        server.shutdown()
        server.server_close()
        study.close()


def _get(base: str, path: str) -> tuple[int, object]:
    try:
        with urllib.request.urlopen(base + path, timeout=10) as response:
            body = response.read()
            kind = response.headers["Content-Type"]
            return response.status, json.loads(body) if "json" in kind else body.decode()
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_binds_localhost_and_serves_the_page_and_plotly(served: tuple[str, lmtune.Study]) -> None:
    base, _ = served
    assert base.startswith("http://127.0.0.1:")
    status, page = _get(base, "/")
    assert status == 200 and "<title>lmtune dashboard</title>" in page  # type: ignore[operator]
    assert '"/static/plotly.min.js"' in page  # type: ignore[operator]
    status, js = _get(base, "/static/plotly.min.js")
    assert status == 200 and "plotly" in js[:2000].lower()  # type: ignore[index]


def test_studies_and_incremental_trials(served: tuple[str, lmtune.Study]) -> None:
    base, study = served
    status, studies = _get(base, "/api/studies")
    assert status == 200
    (entry,) = studies  # type: ignore[misc]
    assert entry["name"] == "a/b c" and entry["n_trials"] == 5
    assert entry["states"]["FAILED"] == 1 and entry["best_number"] == study.best_trial.number
    quoted = "/api/studies/a%2Fb%20c"
    _, first = _get(base, quoted + "/trials?since=-1")
    assert [t["number"] for t in first["trials"]] == [0, 1, 2, 3, 4]  # type: ignore[index]
    _, nothing = _get(base, f"{quoted}/trials?since={first['seq']}")  # type: ignore[index]
    assert nothing["trials"] == []  # type: ignore[index]
    study.optimize(_objective, n_trials=2)
    _, new = _get(base, f"{quoted}/trials?since={first['seq']}")  # type: ignore[index]
    assert [t["number"] for t in new["trials"]] == [5, 6]  # type: ignore[index]


def test_one_trial_and_plots(served: tuple[str, lmtune.Study]) -> None:
    base, study = served
    quoted = "/api/studies/a%2Fb%20c"
    _, failed = _get(base, quoted + "/trials/2")
    assert failed["state"] == "FAILED" and "bad batch" in failed["failure_reason"]  # type: ignore[index]
    assert failed["intermediate"] == {"0": pytest.approx(study.trials[2].intermediate[0])}  # type: ignore[index]
    for kind in ("history", "intermediate", "parallel", "slice", "contour", "timeline", "importance"):
        status, fig = _get(base, f"{quoted}/plots/{kind}")
        assert status == 200 and "data" in fig and "layout" in fig, kind  # type: ignore[operator]
    _, history = _get(base, quoted + "/plots/history")
    assert len(history["data"][0]["x"]) == len(study.get_trials([TrialState.COMPLETE]))  # type: ignore[index]


def test_unknown_things_are_404(served: tuple[str, lmtune.Study]) -> None:
    base, _ = served
    assert _get(base, "/api/studies/nope/trials")[0] == 404
    assert _get(base, "/api/studies/a%2Fb%20c/trials/99")[0] == 404
    assert _get(base, "/api/studies/a%2Fb%20c/plots/pie")[0] == 404
    assert _get(base, "/nothing/here")[0] == 404
    assert _get(base, "/api/studies/a%2Fb%20c/trials?since=x")[0] == 400


def _get_with_host(base: str, path: str, host: str) -> tuple[int, bytes]:
    """A GET whose Host header names ``host`` (as a page on a rebound domain would send it)."""
    import http.client
    from urllib.parse import urlsplit

    address = urlsplit(base)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    try:
        connection.putrequest("GET", path, skip_host=True)
        connection.putheader("Host", host)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_requests_naming_another_host_are_refused(served: tuple[str, lmtune.Study]) -> None:
    base, _ = served
    port = base.rsplit(":", 1)[1]
    for host in (
        "evil.example",
        f"evil.example:{port}",
        "127.0.0.1.evil.example",
        "localhost.evil.example:80",
    ):
        status, body = _get_with_host(base, "/api/studies", host)
        assert status == 403, host
        assert b"--allow-host" in body and b"a/b c" not in body
    assert _get_with_host(base, "/", "evil.example")[0] == 403
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "LOCALHOST", f"[::1]:{port}"):
        status, body = _get_with_host(base, "/api/studies", host)
        assert status == 200 and b"a/b c" in body, host


def test_allowed_hosts_add_names(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hosts.db'}"
    lmtune.create_study(storage=url, study_name="s").close()
    server = make_server(url, port=0, allowed_hosts=["tuner.lan"])
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    host, port = server.server_address[:2]
    base = f"http://{host}:{port}"
    try:
        assert _get_with_host(base, "/api/studies", f"tuner.lan:{port}")[0] == 200
        assert _get_with_host(base, "/api/studies", "other.lan")[0] == 403
    finally:
        server.shutdown()
        server.server_close()
    anyone = make_server(url, port=0, allowed_hosts=["*"])
    threading.Thread(target=anyone.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    host, port = anyone.server_address[:2]
    try:
        assert _get_with_host(f"http://{host}:{port}", "/api/studies", "other.lan")[0] == 200
    finally:
        anyone.shutdown()
        anyone.server_close()


def test_view_and_series_send_what_the_page_draws(served: tuple[str, lmtune.Study]) -> None:
    base, study = served
    quoted = "/api/studies/a%2Fb%20c"
    status, view = _get(base, quoted + "/view?page=0&since=-1")
    assert status == 200
    assert [r["number"] for r in view["rows"]] == [4, 3, 2, 1, 0]  # type: ignore[index]
    assert view["states"] == {"COMPLETE": 4, "FAILED": 1} and view["columns"] == ["x"]  # type: ignore[index]
    _, same = _get(base, f"{quoted}/view?page=0&since={view['seq']}")  # type: ignore[index]
    assert same == {"seq": view["seq"], "unchanged": True}  # type: ignore[index]
    study.optimize(_objective, n_trials=1)
    _, changed = _get(base, f"{quoted}/view?page=0&since={view['seq']}")  # type: ignore[index]
    assert changed["rows"][0]["number"] == 5 and changed["seq"] > view["seq"]  # type: ignore[index]
    _, history = _get(base, quoted + "/series/history")
    assert history["n"] == 5 and sorted(history["points"]["x"]) == [0, 1, 3, 4, 5]  # type: ignore[index]
    _, curves = _get(base, quoted + "/series/intermediate")
    assert curves["n"] == 6 and {t["state"] for t in curves["traces"]} == {"COMPLETE", "FAILED"}  # type: ignore[index]
    assert _get(base, quoted + "/series/pie")[0] == 404


def test_the_command_takes_allow_host(tmp_path: Path) -> None:
    import re
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    lmtune.create_study(storage=url, study_name="s").close()
    command = [sys.executable, "-m", "lmtune.cli", "dashboard", "--storage", url, "--port", "0"]
    server = subprocess.Popen([*command, "--allow-host", "tuner.lan"], stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()  # type: ignore[union-attr]
        address = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert address, line
        assert _get_with_host(address.group(0), "/api/studies", "tuner.lan")[0] == 200
        assert _get_with_host(address.group(0), "/api/studies", "evil.example")[0] == 403
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_a_damaged_row_is_a_json_error_not_a_crash(served: tuple[str, lmtune.Study], tmp_path: Path) -> None:
    import sqlite3

    base, study = served
    with sqlite3.connect(tmp_path / "api.db") as conn:
        conn.execute("UPDATE lmtune_trials SET state = 'SLEEPING' WHERE number = 0")
        conn.execute("UPDATE lmtune_studies SET attrs = '[1, 2' WHERE name = 'a/b c'")
    status, body = _get(base, "/api/studies")
    assert status == 400 and "damaged row" in body["error"], body  # type: ignore[index]


def test_the_dashboard_never_creates_tables_in_a_foreign_database(tmp_path: Path) -> None:
    import sqlite3

    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    before = foreign.read_bytes()
    with pytest.raises(lmtune.LmtuneError, match="not an lmtune database"):
        make_server(f"sqlite:///{foreign}", port=0)
    assert foreign.read_bytes() == before
