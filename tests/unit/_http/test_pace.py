"""The schedule of a paced connection shared by the processes of one host (a file under flock): two
limiters on one file start their requests as one would, a pause or a 429's cut in one holds the other,
and a host where the file cannot be used falls back to each process's own schedule."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from airflow_provider_smsww._http import pace as pace_module
from airflow_provider_smsww._http.adaptive import RateState
from airflow_provider_smsww._http.pace import HostPace, Pace, ProcessPace, pace_for
from airflow_provider_smsww._http.ratelimit import RateLimiter, Turn


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def two_limiters(path: Path, rate: float = 10) -> tuple[RateLimiter, RateLimiter, Clock]:
    """Two limiters, as two processes would have, on one host's file and one clock."""
    clock = Clock()
    return (
        RateLimiter(rate, clock=clock, pace=HostPace(path)),
        RateLimiter(rate, clock=clock, pace=HostPace(path)),
        clock,
    )


def test_two_processes_on_one_file_take_turns_at_one_rate(tmp_path: Path) -> None:
    one, two, _ = two_limiters(tmp_path / "pace")
    delays = [round(gate.reserve()[0], 3) for gate in (one, two, one, two)]
    assert delays == [0.0, 0.1, 0.2, 0.3]  # one schedule: 10 starts a second between them, not 20


def test_a_pause_set_by_one_process_holds_the_other(tmp_path: Path) -> None:
    one, two, clock = two_limiters(tmp_path / "pace")
    end = one.pause(2.0)
    assert end == clock.now + 2.0
    assert two.reserve()[0] == pytest.approx(2.0)


def test_a_429_in_one_process_cuts_the_rate_of_both_once(tmp_path: Path) -> None:
    one, two, clock = two_limiters(tmp_path / "pace")
    for _ in range(10):  # for 2 s the gateway accepted 10 a second from the host, 5 from each process
        for gate in (one, two):
            gate.answered(gate.reserve()[1], throttled=False)
        clock.now += 0.2
    turn = one.reserve()[1]
    stale = two.reserve()[1]
    one.pause(1.0)
    one.answered(turn, throttled=True)
    two.answered(stale, throttled=True)  # started before the cut: no second cut
    clock.now += 1.0  # the pause's end: the climb starts from the cut
    assert one.interval == pytest.approx(two.interval)
    assert one.interval == pytest.approx(1 / 7)  # BACKOFF x 10, not the 5 one process was accepted
    with HostPace(tmp_path / "pace").hold() as shared:
        assert shared.cuts == 1


def test_the_state_round_trips_and_a_new_file_is_a_fresh_schedule() -> None:
    rate = RateState(throttled_at=20.0, climb_from=7.0, plateau_after=2.5, first_seen=1.0, newest_bucket=28)
    rate.counts[-1] = 4
    state = Pace(next_start=5.5, paused_until=7.0, changes=3, cuts=1, rate=rate)
    assert Pace.unpack(state.pack()) == state
    assert Pace.unpack(Pace().pack()) == Pace()
    assert Pace.unpack(b"") == Pace()


def test_each_connection_url_and_rate_has_its_own_file(tmp_path: Path) -> None:
    paths = {
        pace_for("smsww_default", "http://a", 20).path,  # type: ignore[union-attr]
        pace_for("smsww_other", "http://a", 20).path,  # type: ignore[union-attr]
        pace_for("smsww_default", "http://b", 20).path,  # type: ignore[union-attr]
        pace_for("smsww_default", "http://a", 10).path,  # type: ignore[union-attr]
    }
    assert len(paths) == 4
    assert all(oct(os.stat(p).st_mode & 0o777) == "0o600" for p in paths)


def test_an_unpaced_connection_shares_nothing() -> None:
    assert isinstance(pace_for("smsww_default", "http://a", None), ProcessPace)


def test_a_link_in_place_of_the_file_or_no_boot_id_falls_back_to_the_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = pace_for("smsww_default", "http://linked", 20)
    assert isinstance(host, HostPace)
    os.unlink(host.path)
    os.symlink(tmp_path / "elsewhere", host.path)
    assert isinstance(pace_for("smsww_default", "http://linked", 20), ProcessPace)
    assert not (tmp_path / "elsewhere").exists()
    monkeypatch.setattr(pace_module, "_BOOT_ID", tmp_path / "no-such-file")
    assert isinstance(pace_for("smsww_default", "http://a", 20), ProcessPace)


def test_turns_are_named_by_the_shared_counts(tmp_path: Path) -> None:
    one, two, _ = two_limiters(tmp_path / "pace")
    one.pause(0.5)
    assert two.reserve()[1] == Turn(changes=1, cuts=0)


def test_a_file_others_may_write_is_not_used(tmp_path: Path) -> None:
    path = tmp_path / "pace"
    path.write_bytes(b"")
    path.chmod(0o666)
    with pytest.raises(PermissionError, match="not this user's alone"):
        HostPace(path)


def test_a_schedule_far_ahead_of_the_clock_starts_afresh(tmp_path: Path) -> None:
    path = tmp_path / "pace"
    path.write_bytes(Pace(next_start=time.monotonic() + 10 * 3600, paused_until=1e12).pack())
    path.chmod(0o600)
    gate = RateLimiter(10, pace=HostPace(path))
    assert gate.reserve()[0] == 0.0  # not a wait of hours for a slot nobody on this host set


def test_a_forked_child_locks_the_file_on_its_own(tmp_path: Path) -> None:
    """flock belongs to the open file, which a fork shares: the child must open its own, or its lock
    would be its parent's and exclude nothing."""
    pace = HostPace(tmp_path / "pace")
    parent_fd = pace._fd
    child = os.fork()
    if child == 0:
        with pace.hold():
            pass
        os._exit(0 if pace._fd != parent_fd else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
