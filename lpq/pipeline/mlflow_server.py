"""A local MLflow tracking server over a results database, as a user opens it to compare runs
(`mlflow server` on 127.0.0.1, a free port, one worker), and the REST queries a comparison needs.

    with serve("results/mlflow.db") as url:
        runs = search_runs(url, "lpa/demo")

Used by the tests (the server and its REST API as a user sees them) and by docs/screenshots/take.py."""
from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, timeout: float = 10.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def api(url: str, path: str, body: dict | None = None, timeout: float = 30.0) -> dict:
    """One MLflow REST call (`/api/2.0/mlflow/<path>`): GET with query parameters in `path`, POST with `body`."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{url}/api/2.0/mlflow/{path}", data=data,
                                 headers={"Content-Type": "application/json"}, method="GET" if body is None else "POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as err:
        raise RuntimeError(f"MLflow REST {path} failed with HTTP {err.code}: {err.read()[:500]!r}") from err


def search_runs(url: str, experiment: str) -> tuple[dict, list[dict]]:
    """(experiment, every run of it) through the REST API, following page tokens."""
    exp = api(url, f"experiments/get-by-name?experiment_name={urllib.request.quote(experiment, safe='')}")["experiment"]
    runs, token = [], None
    while True:
        body = {"experiment_ids": [exp["experiment_id"]], "max_results": 1000, **({"page_token": token} if token else {})}
        page = api(url, "runs/search", body)
        runs += page.get("runs", [])
        token = page.get("next_page_token")
        if not token:
            return exp, runs


@contextlib.contextmanager
def serve(db: str | os.PathLike, *, port: int | None = None, start_timeout: float = 180.0) -> Iterator[str]:
    """Start `mlflow server` over the SQLite file `db` and yield its base URL once /health answers; stop it (and
    its workers) at the end. Readiness is the server's own health answer, never a sleep."""
    db = Path(db).resolve()
    if not db.is_file():
        raise FileNotFoundError(f"no MLflow database at {db}")
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    mlflow = Path(sys.executable).with_name("mlflow")
    cmd = [str(mlflow) if mlflow.is_file() else "mlflow", "server", "--backend-store-uri", f"sqlite:///{db}",
           "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with tempfile.TemporaryDirectory(prefix="lpq-mlflow-") as cwd, \
            open(Path(cwd) / "server.log", "w+b") as log:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + start_timeout
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"mlflow server exited with {proc.returncode}: {log.read()[-2000:]!r}")
                with contextlib.suppress(OSError):
                    status, _ = _get(f"{url}/health", timeout=2.0)
                    if status == 200:
                        break
                if time.monotonic() > deadline:
                    log.seek(0)
                    raise TimeoutError(f"mlflow server on {url} not healthy after {start_timeout:.0f} s: "
                                       f"{log.read()[-2000:]!r}")
                time.sleep(0.25)
            yield url
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 15)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, 9)
                proc.wait()
