"""Tickets and admissions are checked without I/O, by any front end with the secret, and
refused when forged, expired, or made for someone else, another sale or the other kind."""

from __future__ import annotations

import pytest

from server.waiting.tokens import Admission, BadToken, Signer, Ticket

SECRET = "s" * 32
NOW = 1_800_000_000.0


def test_an_admission_made_by_one_front_end_is_accepted_by_another() -> None:
    # another process (a restarted front end, another node) with the same cluster secret
    token = Signer(SECRET).admission(Admission("sale1", "alice", NOW + 60))
    assert Signer(SECRET).check_admission(token, "sale1", "alice", NOW) == Admission(
        "sale1", "alice", NOW + 60
    )


def test_a_ticket_carries_its_place() -> None:
    signer = Signer(SECRET)
    token = signer.ticket(Ticket("sale1", "bob", 42, NOW + 600))
    assert signer.check_ticket(token, "sale1", "bob", NOW).place == 42


@pytest.mark.parametrize(
    ("sale", "user", "now", "why"),
    [
        ("sale2", "alice", NOW, "another sale or user"),
        ("sale1", "mallory", NOW, "another sale or user"),
        ("sale1", "alice", NOW + 60, "expired"),
    ],
)
def test_an_admission_is_bound_to_its_sale_user_and_time(
    sale: str, user: str, now: float, why: str
) -> None:
    signer = Signer(SECRET)
    token = signer.admission(Admission("sale1", "alice", NOW + 60))
    with pytest.raises(BadToken, match=why):
        signer.check_admission(token, sale, user, now)


def test_a_ticket_is_no_admission() -> None:
    signer = Signer(SECRET)
    ticket = signer.ticket(Ticket("sale1", "alice", 1, NOW + 60))
    with pytest.raises(BadToken, match="another sale or user"):
        signer.check_admission(ticket, "sale1", "alice", NOW)


def test_forged_and_foreign_tokens_are_refused() -> None:
    signer = Signer(SECRET)
    token = signer.admission(Admission("sale1", "alice", NOW + 60))
    head, _, tail = token.partition(".")
    # the payload of someone else's admission under alice's signature, a flipped
    # signature, another key's token, and garbage
    bobs = signer.admission(Admission("sale1", "bob", NOW + 60)).partition(".")[0]
    flipped = tail[:-1] + ("A" if tail[-1] != "A" else "B")
    other = Signer("o" * 32).admission(Admission("sale1", "alice", NOW + 60))
    for forged in (f"{bobs}.{tail}", f"{head}.{flipped}", other, "", "x.y", "%%%.%%%"):
        with pytest.raises(BadToken):
            signer.check_admission(forged, "sale1", "alice", NOW)


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Signer("short")


def test_a_sold_out_sale_s_waitlist_admission_says_so_and_is_no_ticket() -> None:
    signer = Signer(SECRET)
    token = signer.admission(Admission("sale1", "alice", NOW + 60, waitlist_only=True))
    assert signer.check_admission(token, "sale1", "alice", NOW).waitlist_only
    plain = signer.admission(Admission("sale1", "alice", NOW + 60))
    assert not signer.check_admission(plain, "sale1", "alice", NOW).waitlist_only
    with pytest.raises(BadToken):
        signer.check_ticket(token, "sale1", "alice", NOW)
