import sys
from pathlib import Path

import pytest

from livectx.errors import MissingPrerequisiteError, ServiceError
from livectx.stack.process import ManagedProcess, require_executable, wait_ready, wait_until


def _proc(tmp_path: Path, marker: str) -> ManagedProcess:
    return ManagedProcess("sleeper", tmp_path / "run" / "p.pid", tmp_path / "logs" / "p.log", marker)


def test_start_records_pid_and_stop_ends_exactly_that_process(tmp_path: Path, unique: str) -> None:
    proc = _proc(tmp_path, f"marker-{unique}")
    pid = proc.start([sys.executable, "-c", "import time; time.sleep(60)", f"marker-{unique}"], cwd=tmp_path)
    assert proc.pid() == pid
    assert proc.stop(timeout_s=10)
    assert proc.pid() is None
    assert not proc.pid_file.exists()
    assert proc.stop() is False  # idempotent


def test_a_reused_pid_with_another_command_line_is_not_ours(tmp_path: Path, unique: str) -> None:
    other = _proc(tmp_path, f"other-{unique}")
    pid = other.start([sys.executable, "-c", "import time; time.sleep(60)", f"other-{unique}"], cwd=tmp_path)
    try:
        mine = _proc(tmp_path / "mine", f"mine-{unique}")
        mine.pid_file.parent.mkdir(parents=True)
        mine.pid_file.write_text(str(pid))  # stale file pointing at a stranger
        assert mine.recorded_pid() == pid
        assert mine.pid() is None
        assert mine.stop() is False  # never signals the stranger
        assert other.pid() == pid
    finally:
        other.stop(timeout_s=10)


def test_process_that_exits_is_reported_gone_and_log_is_kept(tmp_path: Path, unique: str) -> None:
    proc = _proc(tmp_path, f"exit-{unique}")
    proc.start([sys.executable, "-c", "print('bye from the child')", f"exit-{unique}"], cwd=tmp_path)
    assert wait_until(lambda: proc.pid() is None, 10)
    assert "bye from the child" in proc.log_tail()


def test_wait_ready_returns_once_healthy_and_names_a_service_that_exited_or_never_answered(
    tmp_path: Path, unique: str
) -> None:
    proc = _proc(tmp_path, f"ready-{unique}")
    proc.start([sys.executable, "-c", "import time; time.sleep(60)", f"ready-{unique}"], cwd=tmp_path)
    try:
        probes: list[float] = []
        wait_ready(proc, "Sleeper", lambda timeout_s: probes.append(timeout_s) or len(probes) > 2, 10, probe_s=0.5)
        assert probes == [0.5, 0.5, 0.5]
        with pytest.raises(ServiceError, match=r"Sleeper \(pid \d+\) did not answer within 0s; see "):
            wait_ready(proc, "Sleeper", lambda timeout_s: False, 0, probe_s=0.5, waiting="did not answer")
    finally:
        proc.stop(timeout_s=10)
    with pytest.raises(ServiceError, match=r"Sleeper \(pid None\) exited; see .*p\.log"):
        wait_ready(proc, "Sleeper", lambda timeout_s: True, 1, probe_s=0.5)


def test_require_executable_finds_a_program_or_names_how_to_install_it() -> None:
    assert Path(require_executable("sh", "install a shell")).name == "sh"
    with pytest.raises(MissingPrerequisiteError, match=r"^apt-get install nothing$"):
        require_executable("livectx-no-such-program", "apt-get install nothing")
