"""Programs that run inside containers, under the image's own interpreter (Python 3.8+,
standard library only). They are real files so that ruff, mypy and the unit tests see
them; the host loads each as text (`script()`) and passes it to `python -c`."""

from importlib import resources


def script(name: str) -> str:
    """The source of `wheelhouse/_scripts/<name>.py`."""
    return resources.files(__name__).joinpath(f"{name}.py").read_text(encoding="utf-8")
