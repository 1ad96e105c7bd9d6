"""Programs that run inside containers, under the image's own interpreter (Python 3.8+,
standard library only). They are real files so that ruff, mypy and the unit tests see
them; the host loads each as text (`script()`) and passes it to `python -c`."""

from pathlib import Path


def script(name: str) -> str:
    """The source of `wheelhouse/_scripts/<name>.py` (a plain file next to this one:
    importlib.resources would cost more to import than a warm build spends here)."""
    return (Path(__file__).parent / f"{name}.py").read_text(encoding="utf-8")
