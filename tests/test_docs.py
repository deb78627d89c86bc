"""The README's two commands are the ones that work: CI runs the test command."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_the_readme_opens_with_the_quickstart_and_the_test_command():
    quickstart, tests = readme_commands()[:2]
    assert "pip install torch==2.13.0" in quickstart and "autoft study run studies/quickstart.toml" in quickstart
    assert "pip install torch==2.13.0" in tests and tests.endswith("python -m pytest -q -n 2")


def test_ci_runs_the_readme_test_command():
    tests = readme_commands()[1]
    test_command = tests.split("&&")[-1].strip()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install -q torch==2.13.0" in ci
    assert re.search(rf"^{re.escape(test_command)}$", ci, re.M)


def test_every_study_file_parses():
    from autoft.config import load_study

    for path in sorted((ROOT / "studies").glob("*.toml")):
        config, _ = load_study(path)
        assert config.name


def test_ci_runs_the_lowest_python_the_package_claims():
    import tomllib

    claimed = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    low = re.search(r">=\s*3\.(\d+)", claimed).group(1)
    assert f"sys.version_info[:2] == (3, {low})" in (ROOT / ".ci" / "run").read_text()
