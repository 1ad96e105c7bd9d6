"""`wheelhouse dockerfile` rendering and `image-report`'s scanner, without an engine.

The Dockerfile text is checked line by line for the properties that matter: which layer
does what, in which order, that every value from config/manifest is checked before it
lands in the file, and that the fallback without bind mounts keeps wheels out of the
final image. The real build is tests/docker/test_image_docker.py; what the engine says
(its versions) comes from fixtures_engine's ScriptedEngine.
"""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import write
from fixtures_engine import engine_with_versions
from fixtures_index import sdist_bytes

from wheelhouse import config as config_mod
from wheelhouse.errors import BuildError, ConfigError, EngineError, InputError
from wheelhouse.image import dockerfile as df
from wheelhouse.image import report as image_report
from wheelhouse.image import stage as st

SLIM = "python:3.12-slim-bookworm"


def stage(**kw: Any) -> st.Stage:
    base: dict[str, Any] = {
        "target": "slim",
        "final_image": SLIM,
        "python": "/usr/local/bin/python3",
        "family": "apt",
        "wheelhouse": "wheelhouse/slim",
    }
    return st.Stage(**{**base, **kw})


def runs(text: str) -> list[str]:
    """The instructions of a Dockerfile, continuation lines joined, comments dropped."""
    out: list[str] = []
    joined = ""
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        joined += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            out.append(" ".join(joined.split()))
            joined = ""
    return out


# -- the stage ----------------------------------------------------------------------------


def test_apt_packages_in_one_layer_with_cleanup_then_deps_then_app_last() -> None:
    s = stage(
        packages=("libpq5", "libyaml-0-2"), app_files=("app.py", "src"), cmd=("python", "app.py")
    )
    steps = runs(st.render(s))
    assert steps[0] == f"FROM {SLIM} AS wheelhouse-final"
    assert steps[1] == (
        "RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "
        "--no-install-recommends libpq5 libyaml-0-2 && rm -rf /var/lib/apt/lists/*"
    )
    install = steps[2]
    assert install.startswith(
        "RUN --mount=type=bind,source=wheelhouse/slim,target=/tmp/wheelhouse "
        "/usr/local/bin/python3 -m venv --without-pip /opt/venv && "
        f"/opt/venv/bin/python /tmp/wheelhouse/.tools/{st.PIP_FILENAME}/pip --isolated install"
    )
    for flag in (
        "--no-index",
        "--require-hashes",
        "--no-cache-dir",
        "--find-links /tmp/wheelhouse",
    ):
        assert flag in install
    assert install.endswith("-r /tmp/wheelhouse/lock.txt")
    assert steps[3] == "ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH"
    # the app comes last: code changes rebuild only these
    assert steps[4:] == [
        "WORKDIR /app",
        'COPY ["app.py", "/app/app.py"]',
        'COPY ["src", "/app/src"]',
        'CMD ["python", "app.py"]',
    ]
    assert not [x for x in steps if x.startswith("COPY") and "wheelhouse" in x]


def test_apk_branch_and_no_package_layer_when_none_needed() -> None:
    steps = runs(st.render(stage(family="apk", packages=("libpq", "yaml"))))
    assert steps[1] == "RUN apk add --no-cache libpq yaml"
    none = runs(st.render(stage(family="apk")))
    assert not [x for x in none if "apk" in x or "apt-get" in x]
    assert none[1].startswith("RUN --mount=type=bind")


def test_dnf_and_no_package_manager() -> None:
    steps = runs(st.render(stage(family="dnf", packages=("libpq",))))
    assert steps[1] == (
        "RUN dnf install -y --setopt=install_weak_deps=False libpq && dnf clean all"
    )
    with pytest.raises(ConfigError, match="no package manager"):
        stage(family=None, packages=("libpq5",))
    stage(family=None)  # nothing to install: fine


@pytest.mark.parametrize(
    "bad",
    ["lib yaml", "libpq5;rm", "-oops", "libfoo\nRUN curl evil", "$(id)", "pkg&&x", ""],
)
def test_bad_package_names_are_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match="runtime package"):
        stage(packages=("libpq5", bad))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("final_image", "python:3.12\nRUN curl evil"),
        ("final_image", "python 3.12"),
        ("wheelhouse", "wheel house/slim"),
        ("wheelhouse", "out,target=/etc"),
        ("wheelhouse", "../outside"),
        ("wheelhouse", "/abs/path"),
        ("app_files", ("src/*.py",)),
        ("app_files", ("my app.py",)),
        ("python", "/usr/bin/python3; rm -rf /"),
        ("cmd", ("python", "a\nRUN x")),
    ],
)
def test_unsafe_values_are_refused(field: str, value: Any) -> None:
    with pytest.raises((ConfigError, EngineError)):
        stage(**{field: value})


def test_cmd_and_copy_are_exec_form_json() -> None:
    text = st.render(stage(app_files=("app.py",), cmd=("sh", "-c", 'echo "$HOME" \\ ok')))
    line = next(x for x in text.splitlines() if x.startswith("CMD"))
    assert json.loads(line[4:]) == ["sh", "-c", 'echo "$HOME" \\ ok']


def test_unprobed_interpreter_is_python3_on_the_path() -> None:
    text = st.render(stage(python="python3"))
    mount = "RUN --mount=type=bind,source=wheelhouse/slim,target=/tmp/wheelhouse"
    assert f"{mount} \\\n    python3 -m venv --without-pip /opt/venv" in text


def test_copy_fallback_installs_in_a_throwaway_stage() -> None:
    s = stage(mode="copy", packages=("libpq5",), app_files=("app.py",))
    text = st.render(s)
    steps = runs(text)
    froms = [x for x in steps if x.startswith("FROM")]
    assert froms == [f"FROM {SLIM} AS wheelhouse-install", f"FROM {SLIM} AS wheelhouse-final"]
    assert "--mount" not in text
    final = steps[steps.index(froms[1]) :]
    install = steps[: steps.index(froms[1])]
    assert install[1] == 'COPY ["wheelhouse/slim", "/tmp/wheelhouse"]'
    assert install[2].startswith("RUN /usr/local/bin/python3 -m venv --without-pip /opt/venv")
    # the final stage: packages, then only the venv from the install stage, then the app
    assert final[1].startswith("RUN apt-get update")
    assert final[2] == "COPY --from=wheelhouse-install /opt/venv /opt/venv"
    assert final[-1] == 'COPY ["app.py", "/app/app.py"]'
    assert not [x for x in final if "wheelhouse/slim" in x]
    assert "extra stage" in text and "build context" in text  # the cost is named


def test_app_wheel_is_installed_last_from_its_own_mount() -> None:
    s = stage(app_wheel="wheelhouse/.app/slim/myapp-1.0-py3-none-any.whl")
    steps = runs(st.render(s))
    last = steps[-1]
    assert last.startswith(
        "RUN --mount=type=bind,source=wheelhouse/slim/.tools,target=/tmp/wheelhouse-tools "
        "--mount=type=bind,source=wheelhouse/.app/slim,target=/tmp/wheelhouse-app "
    )
    assert last.endswith("--no-deps /tmp/wheelhouse-app/myapp-1.0-py3-none-any.whl")
    ignore = st.dockerignore(s).splitlines()
    assert "!wheelhouse/.app/slim/myapp-1.0-py3-none-any.whl" in ignore
    copy = st.render(replace(s, mode="copy"))
    assert 'COPY ["wheelhouse/.app/slim", "/tmp/wheelhouse-app"]' in copy


def test_whole_file_has_a_header_and_the_fragment_does_not() -> None:
    s = stage(notes=("the final image was not probed",))
    whole = st.render(s, whole=True, dockerfile="docker/Dockerfile")
    assert "DOCKER_BUILDKIT=1 docker build -f docker/Dockerfile --network=none -t IMAGE ." in whole
    assert "# note: the final image was not probed" in whole
    fragment = st.render(s, whole=False)
    assert fragment.splitlines()[1] == f"FROM {SLIM} AS wheelhouse-final"
    assert "docker build" not in fragment
    assert runs(whole) == runs(fragment)
    # apt needs the network: no --network=none then
    assert "--network=none" not in st.build_command(stage(packages=("libpq5",)), "Dockerfile")


def test_dockerignore_is_an_allow_list_without_the_manifest() -> None:
    lines = st.dockerignore(stage(app_files=("app.py", "src"))).splitlines()
    assert lines[1:] == [
        "*",
        "!wheelhouse/slim/*.whl",
        "!wheelhouse/slim/lock.txt",
        "!wheelhouse/slim/.tools",
        "!app.py",
        "!src",
    ]


# -- from a project folder ------------------------------------------------------------------


def _project(
    tmp_path: Path,
    *,
    runtime: list[str] | None = None,
    complete: bool = True,
    wheels: list[dict[str, Any]] | None = None,
    extra: str = "",
) -> config_mod.Config:
    root = tmp_path / "project"
    write(
        root / "wheelhouse.toml",
        f"""
default-targets = ["slim"]
[targets.slim]
python-version = "3.11"
builder-image = "builder:1"
final-image = "final:1"
{extra}
""",
    )
    folder = root / "wheelhouse" / "slim"
    write(folder / "lock.txt", "")
    manifest = {
        "target": "slim",
        "complete": complete,
        "missing": [] if complete else ["pyyaml==6.0.2"],
        "runtime_packages": runtime or [],
        "wheels": wheels or [],
    }
    write(folder / "manifest.json", json.dumps(manifest))
    write(root / "app.py", "print('hi')\n")
    return config_mod.load(root, environ={"WHEELHOUSE_CACHE_DIR": str(tmp_path / "cache")})


@pytest.fixture
def no_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    """No network here: the pip wheel is the e2e test's business."""
    monkeypatch.setattr(df, "ensure_pip", lambda config, folder: folder / ".tools" / "pip.whl")
    monkeypatch.setattr(df, "ensure_uv", lambda config, folder, arch: None)  # uv: the same


def test_without_an_engine_it_falls_back_to_the_targets_libc_and_says_so(
    tmp_path: Path, no_pip: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOCKER_BUILDKIT", raising=False)
    cfg = _project(tmp_path, runtime=["libpq5"])
    res = df.dockerfile(
        cfg,
        cfg.target("slim"),
        engine=None,
        app=[Path("app.py")],
        cmd=["python", "app.py"],
        whole=True,
    )
    assert res.stage.family == "apt" and res.stage.python == "python3"
    assert res.stage.mode == "mount"
    assert any("not probed" in n and "apt" in n for n in res.notes)
    assert res.stage.packages == ("libpq5",)
    again = df.dockerfile(
        cfg,
        cfg.target("slim"),
        engine=None,
        app=[Path("app.py")],
        cmd=["python", "app.py"],
        whole=True,
    )
    assert again.text == res.text and again.ignore == res.ignore  # deterministic
    musl = _project(tmp_path / "m", extra='libc = "musl"')
    assert df.dockerfile(musl, musl.target("slim"), engine=None).stage.family == "apk"


def test_recipe_runtime_packages_only_for_wheels_built_from_source(
    tmp_path: Path, no_pip: None
) -> None:
    built = {"name": "pyyaml", "provenance": {"sha256": "x"}}
    downloaded = {"name": "psycopg2", "provenance": None}
    cfg = _project(tmp_path, wheels=[built, downloaded])
    res = df.dockerfile(cfg, cfg.target("slim"), engine=None)
    assert res.stage.packages == ("libyaml-0-2",)  # the shipped pyyaml recipe's runtime.apt
    repaired = _project(tmp_path / "r", wheels=[built], extra="repair = true")
    assert df.dockerfile(repaired, repaired.target("slim"), engine=None).stage.packages == ()


def test_bad_manifest_values_and_incomplete_wheelhouses_are_refused(
    tmp_path: Path, no_pip: None
) -> None:
    cfg = _project(tmp_path, runtime=["libpq5", "x; curl evil | sh"])
    with pytest.raises(ConfigError, match=r"manifest\.json: runtime_packages holds"):
        df.dockerfile(cfg, cfg.target("slim"), engine=None)
    cfg = _project(tmp_path / "i", complete=False)
    with pytest.raises(InputError, match=r"incomplete: missing pyyaml==6\.0\.2"):
        df.dockerfile(cfg, cfg.target("slim"), engine=None)
    (cfg.output / "slim" / "manifest.json").unlink()
    with pytest.raises(InputError, match="wheelhouse build -t slim"):
        df.dockerfile(cfg, cfg.target("slim"), engine=None)


def test_app_paths_are_checked(tmp_path: Path, no_pip: None) -> None:
    cfg = _project(tmp_path)
    target = cfg.target("slim")
    for bad, match in (
        (".", "not the project itself"),
        ("nope.py", "no such file"),
        ("wheelhouse", "contains the output folder"),
        ("../elsewhere", "inside the project"),
    ):
        (tmp_path / "elsewhere").mkdir(exist_ok=True)
        with pytest.raises(InputError, match=match):
            df.dockerfile(cfg, target, engine=None, app=[Path(bad)])
    write(cfg.root / "my app.py", "")
    with pytest.raises(ConfigError, match="plain context-relative paths"):
        df.dockerfile(cfg, target, engine=None, app=[Path("my app.py")])


def test_a_project_app_is_built_into_its_own_pure_wheel(tmp_path: Path, no_pip: None) -> None:
    cfg = _project(tmp_path)
    with tarfile.open(fileobj=io.BytesIO(sdist_bytes("myapp", "1.0"))) as tf:
        tf.extractall(cfg.root, filter="data")
    (cfg.root / "myapp-1.0").rename(cfg.root / "svc")
    res = df.dockerfile(cfg, cfg.target("slim"), engine=None, app=[Path("svc")])
    assert res.stage.app_wheel == "wheelhouse/.app/slim/myapp-1.0-py3-none-any.whl"
    assert (cfg.root / res.stage.app_wheel).is_file()
    assert res.stage.app_files == ()
    with pytest.raises(InputError, match="only one project"):
        df.dockerfile(cfg, cfg.target("slim"), engine=None, app=[Path("svc"), Path("svc")])
    (cfg.root / "svc" / "pyproject.toml").write_text("[build-system\n")
    with pytest.raises(BuildError, match="cannot build a wheel of the app"):
        df.dockerfile(cfg, cfg.target("slim"), engine=None, app=[Path("svc")])


# -- which install the engine can do ----------------------------------------------------------


@pytest.mark.parametrize(
    ("engine", "mode", "why"),
    [
        (engine_with_versions("20.10.24+dfsg1", "20.10.24+dfsg1"), "mount", None),
        (engine_with_versions("27.3.1", "27.3.1", buildx=True), "mount", None),
        (engine_with_versions("27.3.1", "27.3.1", buildx=False), "copy", "no buildx plugin"),
        (engine_with_versions("20.10.24", "17.03.2-ce"), "copy", "predates BuildKit"),
        (engine_with_versions("4.3.1", "4.3.1", binary="/usr/bin/podman"), "mount", None),
        (engine_with_versions("3.4.4", "3.4.4", binary="podman"), "copy", "older than 4.0"),
        (engine_with_versions("", ""), "mount", "could not ask the engine"),
        (None, "mount", "no container engine"),
    ],
)
def test_detect_mode(
    engine: Any, mode: str, why: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOCKER_BUILDKIT", raising=False)
    got, reason = df.detect_mode(engine)
    assert got == mode
    assert (reason is None) if why is None else (why in (reason or ""))


def test_docker_buildkit_0_means_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_BUILDKIT", "0")
    assert df.detect_mode(engine_with_versions("20.10.24", "20.10.24"))[0] == "copy"


# -- image-report's scanner -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/usr/bin/gcc", True),
        ("/usr/bin/gcc-12", True),
        ("/usr/bin/x86_64-linux-gnu-gcc-12", True),
        ("/usr/bin/cc", True),
        ("/usr/bin/c++", True),
        ("/usr/local/bin/clang-16", True),
        ("/usr/lib/gcc/x86_64-linux-gnu/12/cc1", True),
        ("/usr/bin/gcc-ar-12", False),
        ("/usr/bin/c++filt", False),
        ("/usr/bin/ccache", False),
        ("/usr/share/doc/gcc", False),
        ("/opt/venv/lib/python3.11/site-packages/cc", False),
    ],
)
def test_compiler_names(path: str, expected: bool) -> None:
    assert image_report.is_compiler(path) is expected


def _layer(members: list[tuple[str, bytes | None]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tf:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            if data is None:
                ti.type = tarfile.DIRTYPE
                tf.addfile(ti)
            else:
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
    return raw.getvalue()


def test_scan_follows_whiteouts_and_sizes_layers(tmp_path: Path) -> None:
    layers = [
        _layer(
            [
                ("usr/", None),
                ("usr/bin/", None),
                ("usr/bin/gcc", b"x" * 100),
                ("wheels/", None),
                ("wheels/a-1-py3-none-any.whl", b"w" * 10),
            ]
        ),
        _layer([("wheels/.wh.a-1-py3-none-any.whl", b""), ("opt/b-1-py3-none-any.whl", b"w")]),
        _layer([("opt/.wh..wh..opq", b""), ("opt/app.py", b"print()")]),
    ]
    config = {
        "rootfs": {"diff_ids": ["sha256:1", "sha256:2", "sha256:3"]},
        "history": [
            {"created_by": "base"},
            {"created_by": "ENV X=1", "empty_layer": True},
            {"created_by": "RUN install"},
            {"created_by": "COPY app"},
        ],
    }
    saved = tmp_path / "image.tar"
    with tarfile.open(saved, "w") as tf:
        files = {
            "manifest.json": json.dumps(
                [{"Config": "c.json", "Layers": ["1/layer.tar", "2/layer.tar", "3/layer.tar"]}]
            ).encode(),
            "c.json": json.dumps(config).encode(),
        }
        files.update({f"{i}/layer.tar": data for i, data in enumerate(layers, start=1)})
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    got_layers, findings = image_report.scan(saved, n_base=1)
    assert [(x.index, x.size, x.created_by, x.in_base) for x in got_layers] == [
        (1, 110, "base", True),
        (2, 1, "RUN install", False),
        (3, 7, "COPY app", False),
    ]
    by_path = {f.path: f for f in findings}
    assert by_path["/usr/bin/gcc"].kind == "compiler" and by_path["/usr/bin/gcc"].present
    assert by_path["/usr/bin/gcc"].in_base
    gone = by_path["/wheels/a-1-py3-none-any.whl"]
    assert gone.kind == "wheel" and not gone.present  # deleted in layer 2: still shipped
    opq = by_path["/opt/b-1-py3-none-any.whl"]
    assert opq.layer == 2 and not opq.present and not opq.in_base  # the opaque dir hid it
