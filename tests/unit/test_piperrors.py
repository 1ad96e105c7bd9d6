"""pip-compile's failures as one message: the samples are pip-compile 7's output in its
exact shape (pip's ERROR lines, then the chained tracebacks), shortened to a few frames.
tests/integration/test_faults_locks.py runs the real pip-compile."""

from __future__ import annotations

from wheelhouse.lock.piperrors import explain, failed_metadata

FRAMES = (
    "Traceback (most recent call last):\n"
    '  File "/venv/lib/python3.11/site-packages/pip/_vendor/resolvelib/resolvers.py", '
    "line 439, in resolve\n"
    "    raise ResolutionImpossible(self.state.backtrack_causes)\n"
)
URL = "http://127.0.0.1:8080"


def pip_output(errors: list[str], impossible: str, last: str) -> str:
    return (
        "".join(f"  ERROR: {e}\n" for e in errors)
        + FRAMES
        + f"pip._vendor.resolvelib.resolvers.ResolutionImpossible: [{impossible}]\n\n"
        "The above exception was the direct cause of the following exception:\n\n"
        + FRAMES
        + f"pip._internal.exceptions.DistributionNotFound: {last}\n"
    )


def candidate(name: str, version: str) -> str:
    file = f"{URL}/files/{name}-{version}-py3-none-any.whl"
    return f"LinkCandidate('{file} (from {URL}/simple/{name}/)')"


CONFLICT = pip_output(
    [
        "Cannot install -r requirements.in (line 1) and werkzeug<2 because these package "
        "versions have conflicting dependencies."
    ],
    "RequirementInformation(requirement=SpecifierRequirement('werkzeug<2'), parent=None), "
    "RequirementInformation(requirement=SpecifierRequirement('werkzeug>=3.0.0'), "
    f"parent={candidate('flask', '3.0.0')})",
    "ResolutionImpossible: for help visit https://pip.pypa.io/en/latest/topics/"
    "dependency-resolution/#dealing-with-dependency-conflicts",
)


def test_a_conflict_names_both_requirements_and_who_asks_for_each() -> None:
    said = explain(CONFLICT)
    assert said.splitlines() == [
        "these requirements conflict (no version satisfies them all):",
        "  werkzeug<2  (asked for by your inputs)",
        "  werkzeug>=3.0.0  (asked for by flask 3.0.0)",
        "Cannot install -r requirements.in (line 1) and werkzeug<2 because these package "
        "versions have conflicting dependencies.",
    ]


def test_a_conflict_through_an_extra_names_the_pinned_file_and_the_extra() -> None:
    werkzeug = candidate("werkzeug", "1.0.1")
    said = explain(
        pip_output(
            ["Cannot install -r r.in (line 1) and werkzeug[watchdog]==1.0.1 because ..."],
            "RequirementInformation(requirement=SpecifierRequirement('werkzeug>=3.0.0'), "
            f"parent={candidate('flask', '3.0.0')}), "
            f"RequirementInformation(requirement=ExplicitRequirement({werkzeug}), "
            f"parent=ExtrasCandidate(base={werkzeug}, extras=frozenset({{'watchdog'}})))",
            "ResolutionImpossible: for help visit https://pip.pypa.io/",
        )
    )
    assert "  werkzeug>=3.0.0  (asked for by flask 3.0.0)" in said.splitlines()
    assert "  werkzeug==1.0.1  (asked for by werkzeug[watchdog] 1.0.1)" in said.splitlines()


def test_a_missing_project_is_named() -> None:
    said = explain(
        pip_output(
            [
                "Could not find a version that satisfies the requirement nosuchpkg "
                "(from versions: none)"
            ],
            "RequirementInformation(requirement=SpecifierRequirement('nosuchpkg'), parent=None)",
            "No matching distribution found for nosuchpkg",
        )
    )
    assert said == "nothing on the indexes satisfies nosuchpkg (usable versions: none)"


def test_a_missing_dependency_names_who_asks_for_it() -> None:
    said = explain(
        pip_output(
            [
                "Could not find a version that satisfies the requirement nosuchdep>=1 "
                "(from wantsmissing) (from versions: 0.1, 0.2)"
            ],
            "RequirementInformation(requirement=SpecifierRequirement('nosuchdep>=1'), "
            f"parent={candidate('wantsmissing', '1.0')})",
            "No matching distribution found for nosuchdep>=1",
        )
    )
    assert said == (
        "nothing on the indexes satisfies nosuchdep>=1 (asked for by wantsmissing) "
        "(usable versions: 0.1, 0.2)"
    )


def test_versions_left_out_for_requires_python_are_said() -> None:
    said = explain(
        pip_output(
            [
                "Ignored the following versions that require a different python version: "
                "1.0 Requires-Python >=3.12",
                "Could not find a version that satisfies the requirement newpy==1.0 "
                "(from versions: none)",
            ],
            "RequirementInformation(requirement=SpecifierRequirement('newpy==1.0'), parent=None)",
            "No matching distribution found for newpy==1.0",
        )
    )
    assert said.splitlines() == [
        "Ignored the following versions that require a different python version: "
        "1.0 Requires-Python >=3.12",
        "nothing on the indexes satisfies newpy==1.0 (usable versions: none)",
    ]


def test_any_other_failure_keeps_the_messages_and_drops_the_tracebacks() -> None:
    output = (
        "Collecting things\n" + FRAMES + "ValueError: something pip-tools did not expect\n\n"
        "During handling of the above exception, another exception occurred:\n\n"
        + FRAMES
        + "piptools.exceptions.PipToolsError: it went wrong\n"
    )
    said = explain(output)
    assert said.splitlines() == [
        "Collecting things",
        "something pip-tools did not expect",
        "it went wrong",
    ]
    assert explain("") == "(no output)"


# pip-compile on a host without cairo's headers (pycairo 1.29.2, meson-python), cut
PYCAIRO = """\
  Run-time dependency cairo found: NO  (tried pkg-config and cmake)

  ../cairo/meson.build:31:12: ERROR: Dependency "cairo" not found (tried pkg-config and cmake)

  A full log can be found at /tmp/pip-resolve-tlv20ows/pycairo_fb7d00aa17b14c7ab52f58cd1d293f60\
/.mesonpy-ikqxn_ou/meson-logs/meson-log.txt
  [end of output]

  note: This error originates from a subprocess, and is likely not a problem with pip.
Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/pip/_internal/operations/build/metadata.py", \
line 35, in generate_metadata
    distribution = source.metadata_directory
pip._internal.exceptions.MetadataGenerationFailed: metadata generation failed
"""

# psycopg2's setup.py on a host without pg_config (pip's own words, cut)
PSYCOPG2 = """\
  error: subprocess-exited-with-error

  × python setup.py egg_info did not run successfully.
  │ exit code: 1
  ╰─> [23 lines of output]
      running egg_info
      creating /tmp/pip-pip-egg-info-0e5n0f1z/psycopg2.egg-info

      Error: pg_config executable not found.

      pg_config is required to build psycopg2 from source.  Please add the directory
      containing pg_config to the $PATH or specify the full executable path with the
      option:
      [end of output]
  File "/tmp/pip-resolve-1x2y3z/psycopg2_0123456789abcdef0123456789abcdef/setup.py", line 1
"""


def test_a_failed_metadata_build_names_the_project_and_the_cause() -> None:
    assert failed_metadata(PYCAIRO) == "pycairo"
    said = explain(PYCAIRO)
    assert said.startswith("pycairo: its metadata could not be prepared")
    assert 'ERROR: Dependency "cairo" not found' in said
    assert "Traceback" not in said and "MetadataGenerationFailed" not in said
    assert failed_metadata(PSYCOPG2) == "psycopg2"
    assert "Error: pg_config executable not found." in explain(PSYCOPG2)


def test_other_failures_are_no_metadata_failure() -> None:
    assert failed_metadata("ERROR: No matching distribution found for nope") is None
