"""The final stage's new parts without an engine: soname needs read from ELF files, the
soname -> package naming policy, install layers, the offline system-package and uv
rendering, and image-report's package-cache findings."""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import write

from wheelhouse.errors import InputError
from wheelhouse.image import layers as ly
from wheelhouse.image import stage as st
from wheelhouse.image.elf import Needs, elf_names, outside_needs, wheel_needs
from wheelhouse.image.report import is_package_cache
from wheelhouse.image.system import naming_policy
from wheelhouse.lock.lockfile import LockFile, Pin, read

# -- sonames ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("soname", "family", "expected"),
    [
        ("libgomp.so.1", "apt", ("libgomp1", "libgomp1t64")),
        ("libldap-2.5.so.0", "apt", ("libldap-2.5-0", "libldap-2.5-0t64")),
        ("libsasl2.so.2", "apt", ("libsasl2-2", "libsasl2-2t64")),
        ("libyaml-0.so.2", "apt", ("libyaml-0-2", "libyaml-0-2t64")),
        ("libstdc++.so.6", "apt", ("libstdc++6", "libstdc++6t64")),
        ("libfoo.so", "apt", ()),
        ("libgomp.so.1", "apk", ("so:libgomp.so.1",)),
    ],
)
def test_debian_and_alpine_naming_policies(
    soname: str, family: str, expected: tuple[str, ...]
) -> None:
    assert naming_policy(soname, family) == expected


@pytest.fixture(scope="module")
def omp_so(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    if shutil.which("gcc") is None:
        pytest.skip("no gcc")
    tmp = tmp_path_factory.mktemp("elf")
    src = write(tmp / "x.c", "#include <omp.h>\nint f(void) { return omp_get_max_threads(); }\n")
    out = tmp / "libx.so.3"
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-fopenmp", "-Wl,-soname,libx.so.3", str(src), "-o", str(out)],
        check=True,
        timeout=60,
    )
    return out.read_bytes()


def test_elf_needed_and_soname(omp_so: bytes) -> None:
    needed, soname = elf_names(omp_so)
    assert needed == ["libgomp.so.1"]
    assert soname == "libx.so.3"
    assert elf_names(b"not an elf file at all" * 4) == ([], None)
    assert elf_names(omp_so[:200]) == ([], None)  # cut short: nothing, no exception


def test_wheel_needs_less_what_wheels_carry(tmp_path: Path, omp_so: bytes) -> None:
    wheel = tmp_path / "x-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("x/_x.cpython-311-x86_64-linux-gnu.so", omp_so)
        zf.writestr("x/__init__.py", "")
    needs = wheel_needs(wheel)
    assert dict(needs.needed)["libgomp.so.1"] == ("x/_x.cpython-311-x86_64-linux-gnu.so",)
    assert "libx.so.3" in needs.provides
    libc = Needs(wheel="z.whl", needed=(("libc.so.6", ("z/_z.so",)),), provides=())
    outside = outside_needs([needs, libc])
    assert list(outside) == ["libgomp.so.1"]  # libc: every image has it
    assert outside["libgomp.so.1"] == (f"{wheel.name}:x/_x.cpython-311-x86_64-linux-gnu.so",)
    # another wheel that carries libgomp (numpy.libs/, an nvidia-* wheel) covers it
    carrier = Needs(wheel="y.whl", needed=(), provides=("libgomp.so.1",))
    assert outside_needs([needs, carrier]) == {}


# -- layers -----------------------------------------------------------------------------


def _w(name: str, size: int) -> ly.Wheel:
    return ly.Wheel(name=name, filename=f"{name}-1.0-py3-none-any.whl", size=size)


def test_auto_layers_by_size_decade_heaviest_first() -> None:
    wheels = [
        _w("torch", 800_000_000), _w("numpy", 16_000_000), _w("six", 11_000),
        _w("nvidia-cublas", 400_000_000), _w("idna", 70_000), _w("scipy", 35_000_000),
    ]  # fmt: skip
    groups = [[w.name for w in g] for g in ly.split(wheels, None)]
    assert groups == [["torch", "nvidia-cublas"], ["scipy", "numpy"], ["idna", "six"]]
    two = [[w.name for w in g] for g in ly.split(wheels, 2)]
    assert two == [["torch", "nvidia-cublas", "scipy", "numpy"], ["idna", "six"]]
    assert len(ly.split(wheels, 16)) == 6 and ly.split([], 3) == []


def test_layers_argument() -> None:
    assert ly.parse_layers("auto") is None and ly.parse_layers("3") == 3
    for bad in ("0", "17", "many", "-1"):
        with pytest.raises(InputError, match="--layers"):
            ly.parse_layers(bad)


def test_layer_folders_hold_their_wheels_and_pins(tmp_path: Path) -> None:
    folder = tmp_path / "slim"
    wheels = [_w("big", 5_000_000), _w("small", 1_000)]
    for w in wheels:
        write(folder / w.filename, w.name)
    pins = tuple(
        Pin(name=n, version="1.0", hashes=(f"sha256:{c * 64}",), via=("x",))  # type: ignore[arg-type]
        for n, c in (("big", "a"), ("small", "b"))
    )
    lock = LockFile(target="slim", target_description="d", inputs_digest="i", pins=pins)
    names = ly.write_layers(folder, lock, ly.split(wheels, 2))
    assert names == (".layers/1", ".layers/2")
    assert [p.name for p in (folder / ".layers/1").glob("*.whl")] == [wheels[0].filename]
    one = read(folder / ".layers/2/lock.txt")
    assert one is not None and one.integrity == "intact"
    assert [(p.name, p.hashes, p.via) for p in one.pins] == [("small", (f"sha256:{'b' * 64}",), ())]
    # written afresh: a layer no longer wanted goes
    ly.write_layers(folder, lock, [wheels])
    assert not (folder / ".layers/2").exists()


# -- rendering --------------------------------------------------------------------------


def _stage(**kw: object) -> st.Stage:
    base: dict[str, object] = {
        "target": "slim", "final_image": "debian:12", "python": "/usr/bin/python3",
        "family": "apt", "wheelhouse": "wheelhouse/slim",
    }  # fmt: skip
    return st.Stage(**{**base, **kw})  # type: ignore[arg-type]


def test_system_packages_install_offline_from_the_mount() -> None:
    s = _stage(packages=("libgomp1",), system_dir="wheelhouse/slim/.system")
    text = st.render(s)
    assert "apt-get update" not in text and "rm -rf /var/lib/apt/lists" not in text
    assert "--mount=type=bind,source=wheelhouse/slim/.system,target=/tmp/wheelhouse-system" in text
    for tmpfs in ("/var/cache/apt", "/var/lib/apt/lists", "/var/log/apt"):
        assert f"--mount=type=tmpfs,target={tmpfs}" in text
    assert "/tmp/wheelhouse-system/*.deb" in text
    assert "--network=none" in st.build_command(s, "Dockerfile")
    assert "!wheelhouse/slim/.system" in st.dockerignore(s)
    # the legacy builder (copy fallback) has no RUN --mount: the network install
    assert "apt-get update" in st.render(replace(s, mode="copy"))
    apk = st.render(_stage(family="apk", packages=("libgomp",), system_dir="w/.system"))
    assert "apk add --no-network --no-cache /tmp/wheelhouse-system/*.apk" in apk
    # no fetched files (dnf, no engine): the network install, and the build needs it
    online = _stage(packages=("libgomp1",))
    assert "apt-get update" in st.render(online)
    assert "--network=none" not in st.build_command(online, "Dockerfile")


def test_installers() -> None:
    pip = st.render(_stage(installer="pip"))
    assert "uv" not in pip.replace("pip-26", "")
    uv = st.render(_stage(installer="uv", compile_bytecode=True))
    assert "/tmp/wheelhouse/.tools/uv pip install --python /opt/venv/bin/python --offline" in uv
    assert "--link-mode copy --compile-bytecode" in uv and "--require-hashes" in uv
    assert "uv_cache.json" in uv and "else" not in uv
    auto = st.render(_stage(installer="auto"))
    assert "if /tmp/wheelhouse/.tools/uv --version" in auto
    assert "installing with pip 26.0.1" in auto and "installing with uv" in auto


def test_layers_mount_only_their_own_files() -> None:
    folders = ("wheelhouse/slim/.layers/1", "wheelhouse/slim/.layers/2")
    s = _stage(installer="auto", layers=folders)
    runs = [x for x in st.render(s).split("\nRUN ")[1:]]
    assert len(runs) == 2 and all("--no-deps" in r for r in runs)
    assert runs[0].startswith("--mount=type=bind,source=wheelhouse/slim/.layers/1,target=")
    assert "-m venv" in runs[0] and "-m venv" not in runs[1]
    for r in runs:  # the tools by file: .tools/libraries.json must not key a layer
        assert "source=wheelhouse/slim/.tools/uv,target=/tmp/wheelhouse-tools/uv" in r
        assert "source=wheelhouse/slim/.tools," not in r
    ignore = st.dockerignore(s)
    assert "!wheelhouse/slim/*.whl" not in ignore and "!wheelhouse/slim/.layers/2" in ignore


def test_the_stage_ends_with_the_environment_check() -> None:
    text = st.render(_stage(check=True, installer="pip"))
    last = text.rstrip().split("\nRUN ")[-1]
    assert "pip --isolated check" in last and "uv pip check" not in last
    auto = st.render(_stage(check=True, installer="auto")).rstrip().split("\nRUN ")[-1]
    assert "uv pip check --python /opt/venv/bin/python" in auto and "pip --isolated check" in auto
    assert "-B /tmp/wheelhouse-tools/check_env.py /tmp/wheelhouse-tools/libraries.json" in last
    assert "check_env.py" not in st.render(_stage())


def test_check_script_reads_glibc_and_musl_loader_messages() -> None:
    from wheelhouse._scripts import check_env

    m = check_env.MISSING.search("libgomp.so.1: cannot open shared object file: No such file")
    assert m is not None and m.group(1) == "libgomp.so.1"
    m = check_env.MISSING.search("Error loading shared library libgomp.so.1: No such file or dir")
    assert m is not None and m.group(2) == "libgomp.so.1"
    assert check_env.MISSING.search("undefined symbol: PyFoo") is None  # not a library


def test_package_caches_are_findings() -> None:
    for path in ("/var/lib/apt/lists/deb.debian.org_dists_bookworm_InRelease",
                 "/var/cache/apt/pkgcache.bin", "/var/cache/apt/archives/x_1_amd64.deb",
                 "/var/cache/apk/APKINDEX.abc.tar.gz"):  # fmt: skip
        assert is_package_cache(path), path
    for path in ("/var/lib/apt/lists/lock", "/var/lib/dpkg/status", "/usr/lib/apt/methods/http"):
        assert not is_package_cache(path), path


# -- `wheelhouse dockerfile` without an engine --------------------------------------------


def test_dockerfile_writes_layers_and_says_the_installer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    from wheelhouse import config as config_mod
    from wheelhouse.image import dockerfile as df

    monkeypatch.setattr(df, "ensure_pip", lambda config, folder: folder / ".tools" / "pip.whl")
    monkeypatch.setattr(df, "ensure_uv", lambda config, folder, arch: folder / ".tools" / "uv")
    monkeypatch.delenv("DOCKER_BUILDKIT", raising=False)
    root = tmp_path / "project"
    write(root / "wheelhouse.toml", '[targets.slim]\npython-version = "3.11"\n')
    folder = root / "wheelhouse" / "slim"
    entries, pins = [], []
    for name, size in (("big", 20_000_000), ("small", 2_000)):
        filename = f"{name}-1.0-py3-none-any.whl"
        data = b"x" * 10
        write(folder / filename, "x" * 10)
        entries.append({"name": name, "filename": filename, "size": size, "provenance": None})
        digest = hashlib.sha256(data).hexdigest()
        pins.append(Pin(name=name, version="1.0", hashes=(f"sha256:{digest}",)))  # type: ignore[arg-type]
    lock = LockFile(target="slim", target_description="d", inputs_digest="i", pins=tuple(pins))
    write(folder / "lock.txt", lock.render())
    manifest = {"complete": True, "missing": [], "runtime_packages": [], "wheels": entries}
    write(folder / "manifest.json", json.dumps(manifest))
    cfg = config_mod.load(root, environ={"WHEELHOUSE_CACHE_DIR": str(tmp_path / "cache")})
    res = df.dockerfile(cfg, cfg.target("slim"), engine=None, layers=None)
    assert res.stage.layers == ("wheelhouse/slim/.layers/1", "wheelhouse/slim/.layers/2")
    assert any(n.startswith("installer: uv 0.13.9, pip where uv cannot run") for n in res.notes)
    assert "install layers, heaviest first: 20.0 MB, 0.0 MB" in res.notes
    assert (folder / ".tools" / "check_env.py").is_file()  # the final check's program
    assert res.stage.check and "check_env.py" in res.text
    one = df.dockerfile(cfg, cfg.target("slim"), engine=None, installer="pip")
    assert one.stage.layers == () and not (folder / ".layers").exists()
    assert "installer: pip" in " ".join(one.notes) and "/uv pip" not in one.text
