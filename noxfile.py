"""Developer tasks: ``nox -s tests``, ``nox -s slow``, ``nox -s lint``, ``nox -s quickstart``, ``nox -s bench``."""

import nox

nox.options.sessions = ["lint", "tests"]
TORCH = "torch==2.13.0"  # the CPU wheel on this workplace's disk; a GPU machine gets the CUDA build


def install(session: nox.Session, extras: str = "") -> None:
    session.install(TORCH)
    session.install("-e", f".[{extras}]" if extras else ".")


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite (a few minutes on a CPU; two tests at a time, as the README's command)."""
    install(session, "dev,ray,postgres")
    session.run("python", "-m", "pytest", "-q", "-n", "2", *session.posargs)


@nox.session
def slow(session: nox.Session) -> None:
    """The long end-to-end checks the default test command leaves out (marked ``slow``)."""
    install(session, "dev,ray,postgres")
    session.run("python", "-m", "pytest", "-q", "-m", "slow", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "autoft", "plugins", "tests", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "autoft", "plugins", "tests", "benchmarks", "noxfile.py")


@nox.session
def quickstart(session: nox.Session) -> None:
    """The quickstart study, offline, on a CPU (about 3 minutes)."""
    install(session)
    session.run("autoft", "study", "run", "studies/quickstart.toml", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """The Trainer-vs-autoft benchmark (small settings on a CPU, the issue's settings on a GPU)."""
    install(session)
    session.run("python", "-m", "benchmarks", *(session.posargs or ["--out", "results.json"]))
