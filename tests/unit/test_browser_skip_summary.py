"""Without Chromium the browser tests are skipped: the run says so in a banner at its end,
with how many and how to get Chromium, instead of a few `s` among hundreds of dots."""
from __future__ import annotations

import pytest

from tests.browser import chromium

pytest_plugins = ["pytester"]

# The suite's own hook, in a session of its own: the conftest imports it from tests/conftest.py.
CONFTEST = "from tests.conftest import pytest_terminal_summary  # noqa: F401\n"
TESTS = f'''
import pytest

from tests.browser import chromium

needs_chromium = pytest.mark.skipif(True, reason=chromium.INSTALL_HINT)


@needs_chromium
@pytest.mark.parametrize("n", [1, 2])
def test_in_a_browser(n):
    pass


def test_needs_a_module_browser(browser):
    pass


@pytest.fixture(scope="module")
def browser():
    pytest.skip(chromium.INSTALL_HINT)


@pytest.mark.skip(reason="something else")
def test_skipped_for_another_reason():
    pass


def test_plain():
    pass
'''


@pytest.fixture
def session(pytester):
    pytester.makeconftest(CONFTEST)
    return pytester


def test_the_run_ends_with_a_banner_counting_the_skipped_browser_tests(session):
    session.makepyfile(test_tiny=TESTS)
    result = session.runpytest("-p", "no:cacheprovider", "-ra")  # as pyproject.toml's addopts
    result.assert_outcomes(passed=1, skipped=4)
    out = result.stdout.str()
    banner = out[out.index("3 browser tests skipped: no Chromium"):]  # the other skip is not counted
    assert "sudo apt-get install -y chromium" in banner and ".ci/run" in banner
    assert str(chromium.CHROMIUM) in banner and "THUMBGEN_CHROMIUM" in banner
    assert out.rstrip().splitlines()[-1].startswith("=")  # before pytest's own last line only
    assert out.index("no Chromium") > out.index("short test summary info")


def test_no_banner_when_no_browser_test_was_skipped(session):
    session.makepyfile(test_tiny=TESTS.replace("skipif(True", "skipif(False").replace(
        "pytest.skip(chromium.INSTALL_HINT)", "return None"))
    result = session.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4, skipped=1)
    assert "Chromium" not in result.stdout.str()
