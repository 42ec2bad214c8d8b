"""`pneumoscan-cli listen`: argument checks and start-up failures, each with a clear message."""
from __future__ import annotations

import socket

import pytest

from core import cli
from pacs_fixtures import tiny_model_entry  # noqa: F401


def listen(capsys, *args) -> tuple[int, str]:
    code = cli.main(["listen", *map(str, args)])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("extra, message", [
    (["--ae-title", "WAY_TOO_LONG_AE_TITLE"], "AE title"),
    (["--ae-title", "OK", "--send-results-to", "ORTHANC@127.0.0.1"], "AET@HOST:PORT"),
    (["--ae-title", "OK", "--allow-calling", "BAD\\AE"], "allowed calling AE title"),
    (["--ae-title", "OK", "--max-file-mb", "0"], "--max-file-mb"),
])
def test_bad_arguments_exit_2_with_the_reason(home, tmp_path, capsys, extra, message):
    code, err = listen(capsys, "--port", 11112, "--inbox", tmp_path / "inbox", *extra)
    assert code == 2 and message in err


def test_port_out_of_range(home, tmp_path, capsys):
    code, err = listen(capsys, "--port", 70000, "--ae-title", "OK", "--inbox", tmp_path / "inbox")
    assert code == 2 and "--port" in err


def test_inbox_that_is_a_file_is_refused(home, tmp_path, capsys):
    blocker = tmp_path / "inbox"
    blocker.write_text("not a folder")
    code, err = listen(capsys, "--port", 11112, "--ae-title", "OK", "--inbox", blocker)
    assert code == 2 and "inbox" in err


def test_port_in_use_exits_1(home, tmp_path, capsys, tiny_model_entry):  # noqa: F811
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, err = listen(capsys, "--port", port, "--ae-title", "OK", "--inbox", tmp_path / "inbox",
                           "--model", tiny_model_entry.keras_path)
    assert code == 1 and f"cannot listen on 127.0.0.1:{port}" in err


def test_unknown_model_exits_2(home, tmp_path, capsys):
    code, err = listen(capsys, "--port", 11112, "--ae-title", "OK", "--inbox", tmp_path / "inbox",
                       "--model", "no-such-model")
    assert code == 2 and "no-such-model" in err
