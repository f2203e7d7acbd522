"""The verifiable track record: the hash chain as written, signed reports, and edits that verification finds."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from test_pnl_report import pdf_text, trading_run

from robohost.adapters.db import tables as t
from robohost.adapters.db.chain import GENESIS, chained, link
from robohost.services.reports.pnl import pnl_report
from robohost.services.reports.track_record import chain_state, fingerprint, verify_report


def _signed(db_url: str, tmp_path: Path) -> tuple[sa.Engine, str, dict[str, Path]]:
    run = trading_run(db_url)
    home = tmp_path / "home"
    home.mkdir()
    report = pnl_report(run.read, "bot", tmp_path / "reports", formats=("pdf",), sign_in=home)
    return run.read.engine, run.run_id, report.files


def test_the_journal_links_every_order_and_fill_line_to_the_one_before(db_url: str) -> None:
    run = trading_run(db_url)
    engine = run.read.engine
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t.journal).where(t.journal.c.run_id == run.run_id).order_by(t.journal.c.id)).all()
    previous, linked = GENESIS, 0
    for row in rows:
        if chained(row.type):
            previous = link(previous, row.seq, row.ts, row.type, row.data)
            assert row.hash == previous.hex()
            linked += 1
        else:
            assert row.hash is None, row.type
    fills = len(run.read.fills("bot", run.run_id))
    assert fills > 10 and linked > fills
    state = chain_state(engine, run.run_id)
    assert (state.length, state.head, state.problems) == (linked, previous.hex(), ())


def test_a_signed_report_verifies_and_prints_its_chain_head(db_url: str, tmp_path: Path) -> None:
    engine, run_id, files = _signed(db_url, tmp_path)
    signed = json.loads(files["signature"].read_text())
    state = chain_state(engine, run_id)
    assert signed["attestation"]["chain_head"] == state.head and signed["attestation"]["chain_length"] == state.length
    assert signed["key_fingerprint"] == fingerprint(signed["public_key"])
    text = " ".join(pdf_text(files["pdf"]).split())
    assert state.head in text.replace(" ", "") and signed["key_fingerprint"] in text
    result = verify_report(files["pdf"], engine, trusted_key=signed["key_fingerprint"])
    assert result.ok, result.problems
    assert any(line.startswith("chain of run") for line in result.checked)


def test_editing_a_fill_afterwards_is_found(db_url: str, tmp_path: Path) -> None:
    engine, run_id, files = _signed(db_url, tmp_path)
    with engine.begin() as conn:
        fill_id = conn.execute(sa.select(t.fills.c.id).where(t.fills.c.run_id == run_id).limit(1)).scalar_one()
        conn.execute(sa.update(t.fills).where(t.fills.c.id == fill_id).values(price=t.fills.c.price * 0.9))
    result = verify_report(files["signature"], engine)
    assert not result.ok
    assert any(f"fill {fill_id} differs from its journal line" in p for p in result.problems)


def test_rewriting_the_journal_and_every_stored_link_still_breaks_the_signed_head(db_url: str, tmp_path: Path) -> None:
    engine, run_id, files = _signed(db_url, tmp_path)
    j = t.journal
    with engine.begin() as conn:  # a careful forger: fill row, journal line and every link after it
        fill_id = conn.execute(sa.select(t.fills.c.id).where(t.fills.c.run_id == run_id).limit(1)).scalar_one()
        conn.execute(sa.update(t.fills).where(t.fills.c.id == fill_id).values(price=t.fills.c.price * 0.9))
        previous = GENESIS
        for row in conn.execute(sa.select(j).where(j.c.run_id == run_id).order_by(j.c.id)).all():
            if not chained(row.type):
                continue
            data = dict(row.data)
            if row.type == "fill" and data["fill_id"] == fill_id:
                data["price"] = data["price"] * 0.9
            previous = link(previous, row.seq, row.ts, row.type, data)
            conn.execute(sa.update(j).where(j.c.id == row.id).values(data=data, hash=previous.hex()))
    assert chain_state(engine, run_id).problems == (), "the forgery is consistent in itself"
    result = verify_report(files["pdf"], engine)
    assert not result.ok
    assert any("no longer ends in the attested head" in p for p in result.problems)


def test_an_altered_signature_file_or_report_is_found(db_url: str, tmp_path: Path) -> None:
    engine, _run_id, files = _signed(db_url, tmp_path)
    signed = json.loads(files["signature"].read_text())
    signed["attestation"]["final_equity"] = "1000000.0"
    files["signature"].write_text(json.dumps(signed))
    with files["csv"].open("a") as out:
        out.write("AAA,buy,,,1,1,,,,\n")
    result = verify_report(files["signature"], engine)
    assert not result.ok
    assert any("signature does not match" in p for p in result.problems)
    assert any(f"{files['csv'].name} was changed" in p for p in result.problems)
