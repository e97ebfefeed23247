"""``verify`` catches every kind of tampering with the stored events and names the first
bad position, on SQLite and PostgreSQL, in one process and in several."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from integrity_helpers import Cli, Dba, SealedLog, head, record_school

from sferum_audit.integrity.store_reader import open_reader
from sferum_audit.integrity.verifier import VerifyReport, verify_log

Tamper = Callable[[Dba, int], None]


def verify(log: SealedLog, *, parallel: bool = False) -> VerifyReport:
    return verify_log(
        log.app.recorder,
        log.data_dir,
        workers=2 if parallel else 1,
        parallel_min=0,
    )


def test_an_untampered_log_verifies(sealed: SealedLog) -> None:
    report = verify(sealed)
    assert report.ok, report.lines()
    assert report.compared == head(sealed.app) == report.latest.size  # type: ignore[union-attr]
    assert report.summary().startswith("OK: positions 1..")
    assert verify(sealed, parallel=True).ok


def flip_byte(dba: Dba, p: int) -> None:
    dba.flip_byte(p)


def delete(dba: Dba, p: int) -> None:
    dba.delete(p)


def shift_insert(dba: Dba, p: int) -> None:
    dba.shift_insert(p)


def swap(dba: Dba, p: int) -> None:
    dba.swap(p, p + 7)


def bump_version(dba: Dba, p: int) -> None:
    dba.set_version(p, 99)


def null_state(dba: Dba, p: int) -> None:
    dba.set_state(p, None)


@pytest.mark.parametrize(
    ("tamper", "kind"),
    [
        (flip_byte, "changed"),
        (delete, "missing"),
        (shift_insert, "changed"),
        (swap, "changed"),
        (bump_version, "changed"),
        (null_state, "malformed"),
    ],
)
@pytest.mark.parametrize("parallel", [False, True], ids=["one-process", "two-processes"])
def test_tampering_is_caught_at_the_first_bad_position(
    sealed: SealedLog, tamper: Tamper, kind: str, parallel: bool
) -> None:
    position = head(sealed.app) * 2 // 3  # in the second worker's range when parallel
    tamper(sealed.dba, position)
    report = verify(sealed, parallel=parallel)
    assert not report.ok
    assert report.first_bad_position == position, report.lines()
    assert report.findings[0].kind == kind, report.lines()
    assert report.summary().startswith(f"FAILED: first bad position {position}: ")


def test_a_sealed_event_deleted_afterwards_is_told_once_and_not_as_a_sealed_hole(
    sealed: SealedLog,
) -> None:
    """An auditor reads one true story: the event was sealed, then deleted."""
    position = head(sealed.app) // 2
    sealed.dba.delete(position)
    report = verify(sealed)
    assert [f.kind for f in report.findings] == ["missing"], report.lines()
    assert "sealed as a hole" not in "\n".join(report.lines())
    assert "is missing from the store (deleted)" in report.summary()


def test_changing_the_first_and_the_last_event_is_caught(sealed: SealedLog) -> None:
    last = head(sealed.app)
    sealed.dba.flip_byte(last)
    assert verify(sealed).first_bad_position == last
    sealed.dba.flip_byte(last)  # flipped back: the log verifies again
    assert verify(sealed).ok
    sealed.dba.flip_byte(1, offset=5)
    assert verify(sealed, parallel=True).first_bad_position == 1


def test_of_two_tamperings_the_first_is_named(sealed: SealedLog) -> None:
    sealed.dba.flip_byte(50)
    sealed.dba.delete(20)
    for parallel in (False, True):
        report = verify(sealed, parallel=parallel)
        assert report.first_bad_position == 20, report.lines()


@pytest.mark.parametrize("cut", [1, 5])
def test_a_truncated_log_is_caught(sealed: SealedLog, cut: int) -> None:
    last = head(sealed.app)
    sealed.dba.delete_from(last - cut + 1)
    report = verify(sealed)
    assert report.first_bad_position == last - cut + 1, report.lines()
    assert report.findings[0].kind == "truncated"
    assert f"the store ends at position {last - cut}" in report.findings[0].message


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)  # only SQLite has this case
def test_an_event_deleted_before_sealing_on_sqlite_stops_the_sealer_and_fails_verify(
    sealed: SealedLog,
) -> None:
    """SQLite never skips a position, so a position without an event is a deletion: the
    sealer raises the same alarm as for a truncated tail and signs nothing."""
    first = head(sealed.app)
    record_school(sealed.app, f"{sealed.school}-b", 20)
    hole = first + 3
    sealed.dba.delete(hole)
    result = sealed.sealer.run_once(force=True)
    assert result.alarm is not None
    assert f"position {hole} has no event" in result.alarm
    assert result.checkpoint is None
    assert result.size == hole - 1  # sealed up to the deletion, not past it
    report = verify(sealed)
    assert report.first_bad_position == hole, report.lines()
    assert report.findings[0].kind == "missing"
    cli = Cli(sealed.settings)
    refused = cli("seal")
    assert refused.exit_code != 0
    assert f"position {hole} has no event" in refused.stderr


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)  # only SQLite has this case
def test_a_hole_sealed_on_sqlite_by_an_earlier_version_fails_verify(
    sealed: SealedLog,
) -> None:
    """Evidence from before this check sealed the deletion as a hole: verify says so."""
    first = head(sealed.app)
    record_school(sealed.app, f"{sealed.school}-b", 20)
    hole = first + 3
    sealed.dba.delete(hole)
    sealed.sealer._reader.gapless = False  # type: ignore[misc]  # the earlier sealer
    assert sealed.sealer.run_once(force=True).holes == (hole,)
    report = verify(sealed)
    assert not report.ok
    assert report.first_bad_position == hole, report.lines()
    assert "never skips a position" in report.summary()


@pytest.mark.parametrize("settings", ["postgres"], indirect=True)  # only PostgreSQL has this case
def test_an_event_deleted_before_sealing_on_postgresql_is_told_from_a_burned_number(
    sealed: SealedLog,
) -> None:
    """The empty position could be a rolled-back insert, but the deleted event's aggregate
    now lacks a version: the sealer refuses to seal past it and verify names the deletion.
    (A rolled-back insert keeps every aggregate whole and is sealed as a hole: see the
    sealer's tests.)"""
    first = head(sealed.app)
    record_school(sealed.app, f"{sealed.school}-b", 20)
    reader = open_reader(sealed.app.recorder)
    rows = reader.rows(first, head(sealed.app), 10_000)
    reader.close()
    versions = {(row[1], row[2]): row[0] for row in rows}
    victim, version = next((row[0], row[2]) for row in rows if (row[1], row[2] + 1) in versions)
    sealed.dba.delete(victim)
    result = sealed.sealer.run_once(force=True)
    assert result.alarm is not None
    assert f"position {victim} has no event" in result.alarm
    assert result.checkpoint is None
    assert result.size == victim - 1
    report = verify(sealed)
    assert not report.ok
    [finding] = report.findings
    assert finding.kind == "missing"
    assert f"version {version + 1} of its aggregate" in finding.message
    assert "an event was deleted" in report.summary()


@pytest.mark.parametrize("settings", ["postgres"], indirect=True)  # only PostgreSQL has this case
def test_an_event_put_into_a_sealed_hole_is_caught(sealed: SealedLog) -> None:
    """A position that held no event when sealed (a hole) must stay empty."""
    first = head(sealed.app)
    record_school(sealed.app, f"{sealed.school}-b", 20)
    hole = first + 3
    sealed.dba.delete(hole)  # before sealing: the sealer sees a gap, as after a rollback
    result = sealed.sealer.run_once(force=True)
    assert result.holes == (hole,)
    report = verify(sealed)
    assert report.ok, report.lines()
    assert report.holes == 1
    sealed.dba.insert(hole)
    report = verify(sealed)
    assert report.first_bad_position == hole
    assert report.findings[0].kind == "inserted"


def test_events_after_the_latest_checkpoint_are_reported_not_failed(sealed: SealedLog) -> None:
    sealed_size = head(sealed.app)
    record_school(sealed.app, f"{sealed.school}-b", 10)
    sealed.dba.insert(head(sealed.app) + 1)  # appended behind the application's back
    report = verify(sealed)
    assert report.ok, report.lines()
    assert report.unsealed == head(sealed.app) - sealed_size
    assert "not yet in a signed checkpoint" in report.summary()
    # Once sealed, a later change to those events is caught like any other.
    sealed.sealer.run_once(force=True)
    sealed.dba.flip_byte(sealed_size + 2)
    assert verify(sealed).first_bad_position == sealed_size + 2


def test_a_change_after_the_latest_checkpoint_but_already_sealed_is_caught(
    sealed: SealedLog,
) -> None:
    """Leaves the sealer wrote but did not sign yet are evidence too (named as such)."""
    sealed.sealer.settings = sealed.sealer.settings.model_copy(
        update={"checkpoint_interval_seconds": 3600}
    )
    before = head(sealed.app)
    record_school(sealed.app, f"{sealed.school}-b", 10)
    result = sealed.sealer.run_once()  # appends the leaves, the checkpoint is not due
    assert result.checkpoint is None
    assert result.size == head(sealed.app)
    sealed.dba.flip_byte(before + 1)
    report = verify(sealed)
    assert report.first_bad_position == before + 1
    assert "not yet in a signed checkpoint" in report.findings[0].message
