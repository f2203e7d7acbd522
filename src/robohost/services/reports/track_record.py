"""A verifiable track record: the run's hash chain, checked against the tables, and signed reports.

A P&L report carries an *attestation* — the run, the length and head of its order-and-fill hash chain
(``robohost.adapters.db.chain``), the key figures and the SHA-256 of each file written — signed with the
home's ed25519 key (created by ``robohost init``, or on first use, at ``keys/report-signing.pem``, mode
0600). ``robohost report verify`` recomputes the chain from the database, checks that the ``fills`` and
``orders`` tables agree with the chained journal lines, compares the head with the attested one and checks
the signature, so a reviewer can tell that the paper results were not edited after the report.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from robohost.adapters.db import tables as t
from robohost.adapters.db.chain import GENESIS, chained, link
from robohost.errors import ConfigError

KEY_FILE = Path("keys") / "report-signing.pem"
PUBLIC_KEY_FILE = Path("keys") / "report-signing.pub"
SIGNATURE_SUFFIX = ".sig.json"


@dataclass(frozen=True, slots=True)
class ChainState:
    """What the database's chain of one run says: its head, its length, and every disagreement found."""

    run_id: str
    length: int
    head: str  # hex
    problems: tuple[str, ...] = ()
    heads: tuple[str, ...] = field(default=(), repr=False)  # the head after each line (for prefixes)

    def head_at(self, length: int) -> str | None:
        """The head after the first ``length`` lines, or None if the chain is shorter."""
        if length == 0:
            return GENESIS.hex()
        return self.heads[length - 1] if 0 < length <= len(self.heads) else None


def chain_state(engine: sa.Engine, run_id: str) -> ChainState:
    """Recompute the run's chain from its journal, compare it with the stored links and with the tables."""
    j = t.journal
    query = sa.select(j.c.id, j.c.seq, j.c.ts, j.c.type, j.c.data, j.c.hash).where(j.c.run_id == run_id)
    problems: list[str] = []
    heads: list[str] = []
    fills: dict[str, dict[str, Any]] = {}
    orders: dict[str, dict[str, Any]] = {}
    previous = GENESIS
    with engine.connect() as conn:
        for row in conn.execute(query.order_by(j.c.id)):
            if not chained(row.type):
                continue
            previous = link(previous, row.seq, row.ts, row.type, row.data)
            heads.append(previous.hex())
            if row.hash != previous.hex() and len(problems) < 20:
                problems.append(f"journal line {row.id} ({row.type}, event {row.seq}): its stored link does not match")
            if row.type == "fill":
                fills[row.data["fill_id"]] = {**row.data, "ts": row.ts}
            else:
                orders[row.data["order_id"]] = row.data  # the order's latest line: its state now
        fill_rows = conn.execute(sa.select(t.fills).where(t.fills.c.run_id == run_id)).all()
        order_rows = conn.execute(sa.select(t.orders).where(t.orders.c.run_id == run_id)).all()
    problems += _compare_fills(fill_rows, fills) + _compare_orders(order_rows, orders, fills)
    return ChainState(run_id, len(heads), heads[-1] if heads else GENESIS.hex(), tuple(problems), tuple(heads))


def _compare_fills(rows: list[sa.Row[Any]], lines: Mapping[str, Mapping[str, Any]]) -> list[str]:
    problems = []
    for row in rows:
        line = lines.get(row.id)
        if line is None:
            problems.append(f"fill {row.id} is in the fills table but not in the chained journal")
            continue
        same = (
            line["order_id"] == row.order_id
            and float(line["qty"]) == row.qty
            and float(line["price"]) == row.price
            and Decimal(str(line["fee"])) == Decimal(row.fee)
            and line["ts"] == row.ts
        )
        if not same:
            problems.append(f"fill {row.id} differs from its journal line (order, quantity, price, fee or time)")
    missing = set(lines) - {row.id for row in rows}
    problems += [f"fill {fill_id} is in the journal but not in the fills table" for fill_id in sorted(missing)]
    return problems


def _compare_orders(
    rows: list[sa.Row[Any]], lines: Mapping[str, Mapping[str, Any]], fills: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """Each order's symbol, side and type as its journal lines give them, and its filled quantity as its fills do.

    (An order's quantity itself may change without a line of its own: a bracket's exits follow what the entry
    filled. What was traded is in the chained fills.)
    """
    filled: dict[str, float] = {}
    for line in fills.values():
        filled[line["order_id"]] = filled.get(line["order_id"], 0.0) + float(line["qty"])
    problems = []
    for row in rows:
        line = lines.get(row.id)
        if line is None:
            continue  # an order that never reached the journal (refused before submission) has no line
        if (line["symbol"], line["side"], line["type"]) != (row.symbol, row.side, row.type):
            problems.append(f"order {row.id} differs from its journal line (symbol, side or type)")
        elif abs(filled.get(row.id, 0.0) - row.filled_qty) > 1e-9 * max(1.0, row.filled_qty):
            problems.append(f"order {row.id}: its filled quantity differs from its chained fills")
    return problems


def signing_key(home: Path) -> Ed25519PrivateKey:
    """The home's report-signing key, created (0600) with its public half on first use."""
    path = home / KEY_FILE
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        (home / PUBLIC_KEY_FILE).write_text(public_key_text(key.public_key()) + "\n")
        return key
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ConfigError(f"{path}: not an ed25519 private key")
    return loaded


def public_key_text(key: Ed25519PublicKey) -> str:
    """The public key as base64 of its 32 raw bytes."""
    return base64.b64encode(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()


def fingerprint(public_key: str) -> str:
    """SHA256:… of the raw public key, as people compare keys."""
    digest = hashlib.sha256(base64.b64decode(public_key)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _canonical(attestation: Mapping[str, Any]) -> bytes:
    return json.dumps(attestation, sort_keys=True, separators=(",", ":")).encode()


def sign_report(home: Path, attestation: Mapping[str, Any], files: Mapping[str, Path], target: Path) -> Path:
    """Write ``target`` (``….sig.json``): the attestation with the files' SHA-256, signed with the home's key."""
    key = signing_key(home)
    body = {**attestation, "files": {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files.values()}}
    public = public_key_text(key.public_key())
    signed = {
        "attestation": body,
        "signature": base64.b64encode(key.sign(_canonical(body))).decode(),
        "public_key": public,
        "key_fingerprint": fingerprint(public),
    }
    target.write_text(json.dumps(signed, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return target


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of ``verify_report``: ok, what was checked, and what failed."""

    ok: bool
    checked: tuple[str, ...]
    problems: tuple[str, ...]
    attestation: Mapping[str, Any]


def signature_file(report: Path) -> Path:
    """The signature file of a report (given the report's HTML/PDF/CSV or the signature itself)."""
    if report.name.endswith(SIGNATURE_SUFFIX):
        return report
    stem = report.name.split(".")[0]
    if stem.startswith("trades-"):
        stem = "pnl-" + stem.removeprefix("trades-")
    return report.with_name(stem + SIGNATURE_SUFFIX)


def verify_report(report: Path, engine: sa.Engine, trusted_key: str | None = None) -> Verification:
    """Check a signed report against the database: signature, key, files, chain head and the tables."""
    path = signature_file(report)
    if not path.exists():
        raise ConfigError(f"{path}: no signature file beside the report (a report pnl writes one)")
    try:
        signed = json.loads(path.read_text(encoding="utf-8"))
        body, public = signed["attestation"], signed["public_key"]
        signature = base64.b64decode(signed["signature"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not a robohost report signature ({exc})") from None
    problems: list[str] = []
    checked: list[str] = []
    if trusted_key is not None and trusted_key not in (public, fingerprint(public)):
        problems.append(f"signed with key {fingerprint(public)}, not the trusted key given")
    try:
        Ed25519PublicKey.from_public_bytes(base64.b64decode(public)).verify(signature, _canonical(body))
        checked.append(f"signature by key {fingerprint(public)}")
    except (InvalidSignature, ValueError):
        problems.append("the signature does not match the attestation: the signature file was altered")
    for name, digest in body.get("files", {}).items():
        candidate = path.with_name(name)
        if candidate.exists():
            if hashlib.sha256(candidate.read_bytes()).hexdigest() != digest:
                problems.append(f"{name} was changed after it was signed")
            else:
                checked.append(f"{name} unchanged")
    state = chain_state(engine, body["run_id"])
    problems += list(state.problems)
    length = int(body["chain_length"])
    head = state.head_at(length)
    if head is None:
        problems.append(f"the database's chain of run {body['run_id']} has {state.length} lines, the report {length}")
    elif head != body["chain_head"]:
        problems.append(f"the chain of run {body['run_id']} no longer ends in the attested head: records were edited")
    else:
        checked.append(f"chain of run {body['run_id']}: {length} order and fill lines, head {head[:16]}…")
    return Verification(not problems, tuple(checked), tuple(problems), body)
