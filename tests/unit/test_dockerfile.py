"""The Dockerfile, checked without a Docker engine.

Statically: pinned base images, a numeric non-root USER (the chart's runAsUser), a wheel
built from the project and pip-installed into a virtualenv, an exec-form ENTRYPOINT that
runs ``kopf run -m rightsizer.handlers``.

Then its install step for real, in a temporary virtualenv: ``pip wheel --no-deps`` of the
checkout (the same isolated PEP 517 build the image does: pip fetches the build backend,
setuptools and wheel, from the package index or its cache) and ``pip install --no-deps
--no-index`` of that wheel into a ``--system-site-packages`` venv. The one difference from
the image is where the runtime dependencies come from: this test environment's
site-packages instead of the index, which keeps the test fast and offline apart from the
build backend. What it proves: the wheel holds every subpackage (a package without
``__init__.py`` is silently left out), ``rightsizer.handlers`` imports from the installed
wheel rather than from the editable checkout, and kopf's ``run`` accepts every flag of the
ENTRYPOINT and CMD. It cannot prove the base image exists or that the operator reaches a
cluster; the e2e tests do the latter.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pytest

from rightsizer.process import ALLOCATOR_ENVIRONMENT

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
OPERATOR_UID = 10001  # the chart's runAsUser


@dataclass(frozen=True)
class Instruction:
    keyword: str
    value: str
    stage: int  # index of the FROM it belongs to


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    instructions: list[Instruction] = []
    logical = ""
    stage = -1
    for raw in text.splitlines():
        line = raw.strip()
        if not logical and (not line or line.startswith("#")):
            continue
        if logical and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        keyword, _, value = logical.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(keyword, " ".join(value.split()), stage))
        logical = ""
    assert not logical, "the Dockerfile ends inside a continued line"
    return instructions


def instructions() -> list[Instruction]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


def exec_form(keyword: str) -> list[str]:
    """The last ENTRYPOINT or CMD, which must be in exec (JSON) form."""
    values = [i.value for i in instructions() if i.keyword == keyword]
    assert values, f"the Dockerfile has no {keyword}"
    try:
        parsed = json.loads(values[-1])
    except json.JSONDecodeError:
        pytest.fail(f"{keyword} must be in exec form (a JSON list): {values[-1]}")
    assert isinstance(parsed, list)
    assert all(isinstance(part, str) for part in parsed)
    return parsed


def entrypoint() -> list[str]:
    return exec_form("ENTRYPOINT")


def test_base_images_are_pinned() -> None:
    froms = [i.value.split() for i in instructions() if i.keyword == "FROM"]
    assert len(froms) >= 2, "a multi-stage build: build a wheel, then copy the venv"
    stage_names = {words[2] for words in froms if len(words) == 3 and words[1].upper() == "AS"}
    for words in froms:
        image = words[0]
        if image in stage_names:
            continue
        name, _, tag = image.partition("@")[0].rpartition(":")
        assert name and tag, f"{image}: pin a tag"
        assert tag != "latest", f"{image}: 'latest' is not a pin"
        assert re.match(r"^3\.11\.\d+-slim-bookworm$", tag), (
            f"{image}: pin the Python patch release and the Debian release "
            "(e.g. python:3.11.14-slim-bookworm)"
        )
        assert "$" not in image, f"{image}: no build-arg in the base image"


def test_final_stage_copies_only_the_venv() -> None:
    final = max(i.stage for i in instructions())
    copies = [i.value for i in instructions() if i.keyword == "COPY" and i.stage == final]
    assert copies == ["--from=build /opt/rightsizer /opt/rightsizer"]


def test_runs_as_a_numeric_non_root_user() -> None:
    users = [i.value for i in instructions() if i.keyword == "USER"]
    assert users, "the image must set USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit(), f"USER {users[-1]}: numeric, so runAsNonRoot can check it"
    assert int(uid) == OPERATOR_UID
    assert not gid or (gid.isdigit() and int(gid) != 0)


def test_install_step_is_pip_install_of_the_project() -> None:
    runs = " && ".join(i.value for i in instructions() if i.keyword == "RUN")
    assert "python -m venv /opt/rightsizer" in runs
    assert re.search(r"pip wheel --no-deps --wheel-dir /wheels /src\b", runs)
    assert re.search(r"pip install /wheels/rightsizer-\*\.whl", runs)
    assert "-e " not in runs, "no editable install in the image"


def final_environment() -> dict[str, str]:
    """The final stage's ENV, name -> value (the ``ENV NAME=value ...`` form)."""
    final = max(i.stage for i in instructions())
    found: dict[str, str] = {}
    for instruction in instructions():
        if instruction.keyword == "ENV" and instruction.stage == final:
            for pair in shlex.split(instruction.value):
                name, equals, value = pair.partition("=")
                assert equals, f"ENV {instruction.value}: use the NAME=value form"
                found[name] = value
    return found


def test_the_operator_runs_with_the_allocator_it_was_measured_with() -> None:
    assert final_environment().items() >= ALLOCATOR_ENVIRONMENT.items()


def test_entrypoint_runs_the_handlers_with_kopf() -> None:
    command = entrypoint()
    assert command[:4] == ["kopf", "run", "-m", "rightsizer.handlers"]
    assert "--liveness=http://0.0.0.0:8080/healthz" in command
    assert "--all-namespaces" in command
    assert "--standalone" in exec_form("CMD")


def test_handlers_module_and_kopf_are_importable() -> None:
    assert importlib.util.find_spec("rightsizer.handlers") is not None
    assert importlib.util.find_spec("kopf") is not None


def test_every_source_folder_is_a_package() -> None:
    """setuptools' find_packages leaves out a folder without __init__.py, modules and all."""
    root = REPO / "operator" / "rightsizer"
    folders = {
        path.parent
        for path in root.rglob("*.py")
        if not any(part.startswith((".", "__pycache__")) for part in path.relative_to(root).parts)
    }
    missing = sorted(str(f.relative_to(REPO)) for f in folders if not (f / "__init__.py").exists())
    assert not missing, f"folders with modules but no __init__.py (not in the wheel): {missing}"


def test_dockerignore_keeps_the_build_context_small() -> None:
    lines = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert "*" in lines
    assert {"!pyproject.toml", "!operator/"} <= set(lines)


@pytest.mark.slow
def test_install_step_in_a_virtualenv(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    wheels = tmp_path / "wheels"
    python = venv / "bin" / "python"

    def run(*args: str | Path, timeout: float = 300) -> str:
        done = subprocess.run(
            [str(arg) for arg in args],
            cwd=tmp_path,  # not the checkout: imports must come from the venv
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, f"{' '.join(map(str, args))}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    run(sys.executable, "-m", "venv", venv)
    # the dependencies from the test environment's site-packages (not its .pth files: the
    # checkout's editable install stays out), so only rightsizer itself comes from the wheel
    [site_packages] = venv.glob("lib/python*/site-packages")
    (site_packages / "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = (python, "-m", "pip", "--disable-pip-version-check", "--no-input")
    run(*pip, "wheel", "--no-deps", "--wheel-dir", wheels, REPO, "-q")
    built = sorted(wheels.glob("rightsizer-*.whl"))
    assert len(built) == 1, f"expected one rightsizer wheel, got {built}"
    run(*pip, "install", "--no-deps", "--no-index", "--force-reinstall", "-q", built[0])

    source_packages = sorted(
        ".".join(init.parent.relative_to(REPO / "operator").parts)
        for init in (REPO / "operator" / "rightsizer").rglob("__init__.py")
    )
    probe = (
        "import importlib.util, json, sys\n"
        "out = {}\n"
        f"for name in {source_packages!r}:\n"
        "    spec = importlib.util.find_spec(name)\n"
        "    out[name] = spec.origin if spec else None\n"
        "import rightsizer.handlers\n"
        "out['handlers'] = rightsizer.handlers.__file__\n"
        "print(json.dumps(out))\n"
    )
    origins = json.loads(run(python, "-c", probe).strip().splitlines()[-1])
    site = str(venv)
    missing = [name for name in source_packages if not (origins[name] or "").startswith(site)]
    assert not missing, f"not installed from the wheel (no __init__.py? not found?): {missing}"
    assert origins["handlers"].startswith(site)

    help_text = run(python, "-m", "kopf", "run", "--help")
    for flag in [*entrypoint()[2:], *exec_form("CMD")]:
        if flag.startswith("-"):
            option = flag.split("=", 1)[0]
            assert re.search(rf"(^|[\s,]){re.escape(option)}\b", help_text), (
                f"kopf run does not know {option}"
            )
