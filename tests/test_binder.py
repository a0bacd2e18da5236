"""Binder: the ``binder/`` folder is what repo2docker reads, and it is enough on its own.

* ``jupyter-repo2docker --no-build --no-run --debug`` is the real tool reading this
  repository: it prints the Dockerfile it would build and needs no Docker daemon.
  The test reads that Dockerfile: Python 3.11, ``binder/requirements.txt``
  installed, ``binder/postBuild`` run, ``binder/start`` as the entry point, and the
  root ``pyproject.toml`` *not* installed (a ``binder/`` folder makes repo2docker
  ignore root config, which is why ``postBuild`` installs the package).
* The slow test builds what Binder would, without Docker: a fresh venv made only from
  ``binder/requirements.txt`` and ``binder/postBuild``, in which every notebook
  (``notebooks/`` and ``apps/``) executes on the sandbox. Several minutes of pip
  install: ``make binder-check`` (or ``make faults``) runs it, not ``make test``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"
BIN = Path(sys.executable).parent


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*==\s*([^\s#;]+)", line)
        if m:
            pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


def test_binder_files_follow_the_rules() -> None:
    assert (BINDER / "runtime.txt").read_text().strip() == "python-3.11"
    post = (BINDER / "postBuild").read_text()
    # repo2docker runs postBuild without `set -e`: a failed step must fail the build.
    assert "set -euo pipefail" in post
    start = (BINDER / "start").read_text().strip().splitlines()
    assert start[-1].strip() == 'exec "$@"', 'binder/start must end with exec "$@"'
    assert "MIXMAX_NB_BACKEND=sandbox" in "\n".join(start)
    for name in ("postBuild", "start"):
        assert os.access(BINDER / name, os.X_OK), f"binder/{name} is not executable"


def test_binder_pins_agree_with_constraints() -> None:
    """Binder runs what CI tested: the widget stack in lock-step, same versions."""
    binder, constraints = _pins(BINDER / "requirements.txt"), _pins(ROOT / "constraints.txt")
    for name in ("ipywidgets", "jupyterlab-widgets", "widgetsnbextension", "jupyterlab", "voila"):
        assert name in binder, f"binder/requirements.txt does not pin {name}"
    differ = {
        n: (v, constraints[n])
        for n, v in binder.items()
        if n in constraints and v != constraints[n]
    }
    assert not differ, f"binder/requirements.txt vs constraints.txt: {differ}"


def test_repo2docker_reads_the_binder_config() -> None:
    r2d = BIN / "jupyter-repo2docker"
    if not r2d.exists():
        pytest.skip("jupyter-repo2docker is not installed (it is in the dev extra)")
    done = subprocess.run(
        [str(r2d), "--no-build", "--no-run", "--debug", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert "python=3.11" in out, out[:1000]
    assert re.search(r'pip install .*-r "?binder/requirements\.txt', out), out[-3000:]
    assert "./binder/postBuild" in out
    assert re.search(r"R2D_ENTRYPOINT=.*binder/start", out)
    # Root config is ignored once binder/ exists: no `pip install -e .` of pyproject.
    assert not re.search(r"pip install .*(-e|--editable) \.", out), "root config was used"


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_a_venv_from_binder_files_runs_every_notebook(tmp_path: Path) -> None:
    """What Binder builds, minus Docker: requirements.txt, then postBuild, then run."""
    repo = tmp_path / "repo"
    listed = subprocess.run(
        ["git", "ls-files", "-z", "-co", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=60,
    )
    for name in filter(None, listed.stdout.decode().split("\0")):
        if (ROOT / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, repo / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    pip = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(repo / "binder/requirements.txt")], check=True, timeout=1200)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MIXMAX_NB_")},
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "VIRTUAL_ENV": str(venv),
        "HOME": str(tmp_path / "home"),
    }
    subprocess.run(["bash", "binder/postBuild"], cwd=repo, env=env, check=True, timeout=600)

    out = tmp_path / "executed"
    failures = []
    for nb in [*sorted(repo.glob("notebooks/*.ipynb")), *sorted(repo.glob("apps/*.ipynb"))]:
        # binder/start sets the backend and home, then runs the command it is given.
        done = subprocess.run(
            [
                "bash",
                "binder/start",
                str(py),
                "-m",
                "jupyter",
                "nbconvert",
                "--to",
                "notebook",
                "--execute",
                "--ExecutePreprocessor.timeout=600",
                f"--output-dir={out}",
                str(nb),
            ],
            cwd=repo,
            env={**env, "MIXMAX_NB_SANDBOX_SIZE": "small"},
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if done.returncode != 0:
            failures.append(f"{nb.name}: {done.stderr[-2000:]}")
    assert not failures, "\n\n".join(failures)
