"""Settings: the derived thread count, and bad values named by their variable."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from app import config
from app.cli.main import main
from app.config import Settings
from app.errors import SettingsInvalid


@pytest.mark.parametrize(("cores", "workers", "expected"), [(2, 1, 2), (2, 2, 1), (2, 4, 1),
                                                            (8, 2, 4), (1, 1, 1)])
def test_threads_default_to_each_workers_share_of_the_cores(
    monkeypatch: pytest.MonkeyPatch, cores: int, workers: int, expected: int
) -> None:
    monkeypatch.setattr(config, "usable_cores", lambda: cores)
    assert Settings(workers=workers).resolved_threads() == expected


def test_threads_set_explicitly_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "usable_cores", lambda: 2)
    assert Settings(threads=3, workers=2).resolved_threads() == 3


def test_workers_and_threads_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYBOOK_WORKERS", "2")
    monkeypatch.setenv("PLAYBOOK_THREADS", "1")
    settings = Settings()
    assert (settings.workers, settings.threads) == (2, 1)


def test_a_bad_setting_is_named_by_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYBOOK_WORKERS", "0")
    monkeypatch.setenv("PLAYBOOK_ENCODER", "tf")
    with pytest.raises(SettingsInvalid) as caught:
        Settings.load()
    assert str(caught.value) == (
        "invalid setting: PLAYBOOK_ENCODER='tf': Input should be 'auto', 'onnx' or 'torch'; "
        "PLAYBOOK_WORKERS='0': Input should be greater than or equal to 1")


def test_the_cli_reports_a_bad_setting_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PLAYBOOK_THREADS", "many")
    result = CliRunner().invoke(main, ["lint"])
    assert result.exit_code == 2
    assert result.output == ("error: invalid setting: PLAYBOOK_THREADS='many': Input should be a "
                             "valid integer, unable to parse string as an integer\n")
