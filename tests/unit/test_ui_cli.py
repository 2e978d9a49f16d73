"""``livectx ui`` on a port that is taken: one readable line and exit 1, before anything is served."""

from __future__ import annotations

import socket

from click.testing import CliRunner

from livectx.cli import cli


def test_a_taken_port_is_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["ui", "--port", str(port)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"error: cannot serve the dashboard on 127.0.0.1:{port} (Address already in use): pick another --port"
    ]
