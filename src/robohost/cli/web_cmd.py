"""``robohost web cert``: the dashboard's certificate, its CA's fingerprint (to pin), renewal."""

from __future__ import annotations

from functools import partial
from typing import Annotated

import typer

from robohost.cli.common import HomeOption, JsonOption, console, opened, print_json
from robohost.services.certificates import Certificates

web_app = typer.Typer(help="The dashboard (served by robohost serve): its TLS certificate.")


def print_certificates(certs: Certificates) -> None:
    """Say which certificate the dashboard uses and what to pin (long values are never wrapped)."""
    say = partial(console.print, soft_wrap=True)
    if certs.own:
        say(f"dashboard certificate (your own): {certs.cert}")
        say(f"  SHA-256 fingerprint: {certs.fingerprint}")
    else:
        say(f"dashboard CA: {certs.ca_cert}")
        say(f"  [bold]CA SHA-256 fingerprint: {certs.ca_fingerprint}[/bold]")
        say("  pin it: import ca.pem into your browser or system as a trusted authority after checking")
        say("  this fingerprint (see the README's 'Dashboard')")
        say(f"dashboard certificate: {certs.cert}")
    say(f"  names: {', '.join(sorted(certs.names))}")
    say(f"  valid until {certs.expires:%Y-%m-%d}; public key pin (SPKI SHA-256): {certs.spki_sha256}")


@web_app.command("cert")
def cert(
    home: HomeOption = None,
    renew: Annotated[
        bool, typer.Option("--renew", help="Issue a new server certificate from the same CA (same fingerprint).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Print the dashboard CA's fingerprint and the certificate's names and expiry (made if missing)."""
    with opened(home) as app:
        certs = app.certificates(renew=renew)
    if as_json:
        print_json(
            {
                "own": certs.own,
                "cert": str(certs.cert),
                "ca_cert": str(certs.ca_cert) if certs.ca_cert else None,
                "ca_fingerprint_sha256": certs.ca_fingerprint,
                "fingerprint_sha256": certs.fingerprint,
                "spki_sha256": certs.spki_sha256,
                "names": sorted(certs.names),
                "expires": certs.expires.isoformat(),
                "made": certs.made,
            }
        )
        return
    print_certificates(certs)
