"""Installed as a package, not run from the checkout: a wheel installed into its own folder
serves a knowledge folder made by `playbook init`, from an unrelated working directory, with
its templates, static files and vendored docs assets."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.fakes import PROJECT_ROOT, free_port, wait_until_ready

pytestmark = pytest.mark.model


def run(*args: str, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_a_wheel_installed_elsewhere_serves_a_folder_made_by_init(tmp_path: Path) -> None:
    wheels, site, work = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1"}
    env.pop("PLAYBOOK_KNOWLEDGE_DIR", None)
    env.pop("PLAYBOOK_INDEX_DIR", None)
    source = tmp_path / "source"  # a copy: building in the checkout would leave build/ there
    shutil.copytree(PROJECT_ROOT / "app", source / "app",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PROJECT_ROOT / name, source / name)
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
        "--wheel-dir", str(wheels), str(source), cwd=work, env=env)
    [wheel] = wheels.glob("playbook_assistant-*.whl")
    run(sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site),
        str(wheel), cwd=work, env=env)
    where = run(sys.executable, "-c", "import app; print(app.__file__)", cwd=work, env=env)
    assert Path(where.strip()).is_relative_to(site)  # not the checkout

    assert run(sys.executable, "-m", "app", "--version", cwd=work, env=env) == (
        "playbook, version 0.1.0\n")
    run(sys.executable, "-m", "app", "init", str(work / "srv-playbook"), cwd=work, env=env)
    port = free_port()
    serve = [sys.executable, "-m", "app", "--knowledge-dir", str(work / "srv-playbook"),
             "--index-dir", str(work / "index"), "serve", "--port", str(port)]
    with subprocess.Popen(serve, cwd=work, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as server:
        url = f"http://127.0.0.1:{port}"
        wait_until_ready(server, url)
        try:
            answer = httpx.post(f"{url}/api/ask",
                                json={"question": "cx wants to update the delivery address"})
            pages = [httpx.get(url + path).status_code for path in (
                "/", "/docs", "/static/style.css", "/static/vendor/swagger-ui/swagger-ui.css")]
        finally:
            server.terminate()
            output = server.communicate(timeout=30)[0]
    assert (answer.status_code, answer.json()["entry_id"]) == (200, "example-change-address")
    assert pages == [200, 200, 200, 200]
    assert "setuptools" not in output and "Loading weights" not in output
    # Everything it wrote is under the working directory, where the help says.
    assert sorted(p.name for p in work.iterdir()) == ["index", "srv-playbook", "var"]
    assert (work / "var" / "feedback.sqlite3").is_file()
