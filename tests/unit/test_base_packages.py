"""Vendor base images without an engine: the config keys, the lock format's provided
pins, the stub wheels the resolvers read, the conflict message, the plan and the stage."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from conftest import write
from packaging.utils import canonicalize_name

from wheelhouse import config
from wheelhouse.errors import ConfigError
from wheelhouse.image.stage import Stage, render
from wheelhouse.lock.base import BaseDist, BaseImage, ConstraintFile
from wheelhouse.lock.basestubs import conflicts, prepare, stub_filename
from wheelhouse.lock.lockfile import LockFile, Pin, parse_pins, read


def _config(root: Path, extra: str = "") -> config.Config:
    write(
        root / "wheelhouse.toml",
        f'[targets.ml]\nextends = "slim"\nfinal-image = "vendor/ml:1"\n{extra}',
    )
    return config.load(root, environ={"WHEELHOUSE_CACHE_DIR": str(root / "cache")})


def _base() -> BaseImage:
    def dist(name: str, version: str, *requires: str) -> BaseDist:
        return BaseDist(
            name=canonicalize_name(name), version=version, location="/site", requires_dist=requires
        )

    return BaseImage(
        image="vendor/ml:1",
        image_id="sha256:1",
        python="/usr/bin/python3",
        prefix="/usr",
        in_venv=False,
        distributions=(
            dist("numpy", "1.26.4"),
            dist("pandas", "2.2.2", "numpy>=1.23.2", "pytz>=2020.1"),
            dist("pip", "23.0.1"),
            dist("torch", "2.6.0a0+ecf3bae40a.nv25.01", "numpy"),
        ),
    )


def test_config_keys(tmp_path: Path) -> None:
    t = _config(tmp_path).target("ml")
    assert t.base_packages is None and t.replace_base == ()  # unset: inherit if any
    t = _config(tmp_path, 'base-packages = "ignore"\nreplace-base = ["NumPy"]').target("ml")
    assert t.base_packages == "ignore" and t.replace_base == ("numpy",)
    with pytest.raises(ConfigError) as e:
        _config(tmp_path, 'base-packages = "keep"')
    assert "targets.ml.base-packages" in str(e.value) and "'inherit'" in str(e.value)


def test_provided_pins_round_trip_without_hashes(tmp_path: Path) -> None:
    lock = LockFile(
        target="ml",
        target_description="x",
        inputs_digest="sha256:0",
        pins=(
            Pin(name=canonicalize_name("flask"), version="3.1.0", hashes=("sha256:" + "a" * 64,)),
            Pin(name=canonicalize_name("torch"), version="2.6.0a0+nv25.01", provided=True),
        ),
        base_image="vendor/ml:1",
        replaces=("numpy 1.26.4 -> 2.0.2",),
    )
    text = lock.render()
    assert "torch==2.6.0a0+nv25.01\n    # provided by the final image\n" in text
    assert "# base-packages: inherit 1 from vendor/ml:1" in text
    (tmp_path / "ml.txt").write_text(text)
    back = read(tmp_path / "ml.txt")
    assert back is not None and back.integrity == "intact"
    assert back.pins == lock.pins and back.replaces == lock.replaces
    assert back.base_image == "vendor/ml:1"
    # a lock without a base keeps its old bytes: no header line, no note
    plain = LockFile(target="ml", target_description="x", inputs_digest="d", pins=lock.pins[:1])
    assert "base-packages" not in plain.render() and "provided" not in plain.render()
    assert parse_pins(plain.render(), "x")[0].provided is False


def test_stubs_carry_the_image_metadata_and_skip_replaced(tmp_path: Path) -> None:
    cfg = _config(tmp_path, 'replace-base = ["numpy"]')
    made = prepare(cfg, cfg.target("ml"), _base())
    assert sorted(made.pinned) == ["pandas", "torch"]  # not pip (tooling), not numpy
    assert made.constraints.read_text() == "pandas==2.2.2\ntorch==2.6.0a0+ecf3bae40a.nv25.01\n"
    wheel = made.folder / stub_filename(made.pinned[canonicalize_name("pandas")])
    assert wheel.name == "pandas-2.2.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as z:
        meta = z.read("pandas-2.2.2.dist-info/METADATA").decode()
    assert "Requires-Dist: numpy>=1.23.2\nRequires-Dist: pytz>=2020.1" in meta
    assert prepare(cfg, cfg.target("ml"), _base()).folder == made.folder  # made once


def test_the_images_constraint_files_hold_what_it_lacks(tmp_path: Path) -> None:
    cfg = _config(tmp_path, 'replace-base = ["scipy"]')
    text = "# NVIDIA's\nnumpy==1.26.4\nclick<8.2  # why\nscipy<1.12\n-c other.txt\n"
    files = (ConstraintFile(declared_by="env PIP_CONSTRAINT", path="/c", exists=True, text=text),)
    base = BaseImage(**{**_base().__dict__, "constraint_files": files})
    made = prepare(cfg, cfg.target("ml"), base)
    lines = made.constraints.read_text().splitlines()
    assert "click<8.2" in lines  # not installed: the file's own constraint
    assert "numpy==1.26.4" in lines and lines.count("numpy==1.26.4") == 1  # pinned once
    assert not [x for x in lines if x.startswith(("scipy", "-c"))]  # replace-base; options


def test_conflict_names_package_base_version_and_requirement(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    write(tmp_path / "requirements.in", "numpy>=2  # newer\n")
    made = prepare(cfg, cfg.target("ml"), _base())
    free = [
        Pin(name=canonicalize_name("numpy"), version="2.1.0", via=("-r requirements.in",)),
        Pin(name=canonicalize_name("pandas"), version="2.2.2"),
    ]
    found = conflicts(cfg, made, free)
    assert [c.describe() for c in found] == [
        "numpy: the final image has 1.26.4, but -r requirements.in (numpy>=2) want(s) another "
        "version (without the image's pins it resolves to 2.1.0)"
    ]


def test_stage_venv_sees_the_base() -> None:
    kw: dict[str, object] = dict(
        target="ml", final_image="vendor/ml:1", python="/usr/bin/python3", family="apt",
        wheelhouse="wheelhouse/ml",
    )  # fmt: skip
    assert "--system-site-packages" not in render(Stage(**kw))  # type: ignore[arg-type]
    text = render(Stage(**kw, system_site_packages=True))  # type: ignore[arg-type]
    assert "-m venv --without-pip --system-site-packages /opt/venv" in text


def test_distributions_script_reads_this_interpreter(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The program run inside images, run here on the host's own interpreter."""
    from wheelhouse._scripts import distributions

    constraint = tmp_path / "c.txt"
    constraint.write_text("numpy==1.26.4\n")
    monkeypatch.setenv("PIP_CONSTRAINT", str(constraint))
    distributions.main()
    data = json.loads(capsys.readouterr().out)
    found = {d["name"].lower(): d for d in data["distributions"]}
    import packaging

    assert found["packaging"]["version"] == packaging.__version__
    assert found["packaging"]["location"]
    assert any(r.startswith("click") for r in found["pip-tools"]["requires_dist"])
    declared = {c["declared_by"]: c for c in data["constraint_files"]}["env PIP_CONSTRAINT"]
    assert declared == {
        "declared_by": "env PIP_CONSTRAINT",
        "path": str(constraint),
        "exists": True,
        "text": "numpy==1.26.4\n",
    }
