"""The command line: help, usage errors and their exit codes."""

from __future__ import annotations

import pytest

from loadgen import main


def test_help_documents_scenarios_modes_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0

    out = capsys.readouterr().out
    for text in ("--scenario", "flash-sale", "mixed", "steady", "open loop", "exit status"):
        assert text in out


def test_missing_secret_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TICKETD_JWT_SECRET", raising=False)

    assert main(["--url", "http://127.0.0.1:9"]) == 2
    assert "pass --jwt-secret or set TICKETD_JWT_SECRET" in capsys.readouterr().err


def test_unknown_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--url", "http://127.0.0.1:9", "--bogus"]) == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


@pytest.mark.parametrize("scenario", ["mixed", "waiting-room"])
def test_a_server_out_of_reach_is_a_setup_failure_that_says_so(
    scenario: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--url", "http://127.0.0.1:9", "--jwt-secret", "s" * 40, "--scenario", scenario]
    assert main(args) == 3
    assert "cannot reach ticketd at http://127.0.0.1:9" in capsys.readouterr().err
