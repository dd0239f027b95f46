"""The Makefile's two install stamps (dry runs in a copy): `make run` installs requirements.txt only,
`make test` the test tools too, each redone only when its files change; `make run-full` prepares the
database and runs every long-running Procfile process under honcho."""

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = "pip install --progress-bar on -r requirements.txt"
TOOLS = "pip install --progress-bar on -r requirements-dev.txt"

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


@pytest.fixture
def project(tmp_path):
    for name in ("Makefile", "Procfile", "requirements.txt", "requirements-dev.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").touch()
    return tmp_path


def dry_run(project, target):
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL", "PORT")}
    return subprocess.run(
        ["make", "-n", target], cwd=project, env=env, capture_output=True, text=True, check=True
    ).stdout


def age(*paths, seconds):
    moment = time.time() - seconds
    for path in paths:
        os.utime(path, (moment, moment))


def test_run_installs_the_runtime_only_and_test_adds_the_tools(project):
    run, test = dry_run(project, "run"), dry_run(project, "test")

    assert RUNTIME in run and TOOLS not in run
    assert TOOLS in test and "python -m pytest" in test


def test_each_stamp_is_redone_only_when_its_files_change(project):
    venv = project / ".venv"
    (venv / ".installed-run").touch()
    (venv / ".installed-test").touch()
    age(project / "requirements.txt", project / "requirements-dev.txt", seconds=60)
    assert "pip install" not in dry_run(project, "run") and "pip install" not in dry_run(project, "test")

    age(project / "requirements.txt", project / "requirements-dev.txt", seconds=180)
    age(venv / ".installed-run", venv / ".installed-test", seconds=120)
    (project / "requirements-dev.txt").touch()
    assert "pip install" not in dry_run(project, "run")
    assert TOOLS in dry_run(project, "test")

    (project / "requirements.txt").touch()
    assert RUNTIME in dry_run(project, "run")
    assert TOOLS in dry_run(project, "test")


def test_run_full_prepares_the_database_then_runs_every_procfile_process(project):
    script = dry_run(project, "run-full")
    steps = [line for line in script.splitlines() if "python -m server" in line or "honcho" in line]

    assert [s.split("python -m server ")[-1] for s in steps[:4]] == ["createdb", "migrate", "seed", "check"]
    assert "postgresql://postgres@127.0.0.1:5432/serviceman" in steps[0]
    assert "redis://127.0.0.1:6379/0" in steps[3]
    assert steps[4].rstrip().endswith("honcho start --env /dev/null -f Procfile -p 8000 web dispatcher worker cron")
