"""``parrain consent``: declare a campaign's data use from a JSON file, check it against the
policy, print the notices rendered from it; verify a consent receipt offline and print the
public key that verifies receipts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from sqlalchemy.orm import Session

from parrain.cli.output import EXIT_PROBLEM, console, describe_validation, reports_errors
from parrain.cli.state import resolve_campaign, state_of
from parrain.consent import service as consent
from parrain.consent.errors import InvalidDeclaration
from parrain.consent.receipts import verify_receipt_file
from parrain.consent.schemas import (
    DeclarationCreate,
    DeclarationRead,
    NoticeLanguage,
    PolicyReport,
)
from parrain.kit.crypto import (
    encode_public_key,
    load_verification_keys,
    verification_keys,
)
from parrain.kit.errors import InvalidKeyMaterial

app = typer.Typer(
    help="Consent: data-use declarations, the policy, the notices, receipts.",
    no_args_is_help=True,
)

CampaignArgument = Annotated[
    str, typer.Argument(metavar="CAMPAIGN", help="The campaign's exact name or its id.")
]
#: Largest declaration file read, in bytes: far more than fifty items need.
MAX_FILE_BYTES = 1_048_576

_FORMULA_NAMES = {"flesch_reading_ease": "Flesch reading ease", "kandel_moles": "Kandel-Moles"}


def _read_declaration(path: Path) -> DeclarationCreate:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise InvalidDeclaration(f"{path}: larger than {MAX_FILE_BYTES} bytes", file=str(path))
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise InvalidDeclaration(
            f"{path}: cannot be read ({error.strerror or 'I/O error'})", file=str(path)
        ) from None
    except UnicodeDecodeError:
        raise InvalidDeclaration(f"{path}: not UTF-8 text", file=str(path)) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidDeclaration(
            f"{path}: not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})",
            file=str(path),
        ) from None
    try:
        return DeclarationCreate.model_validate(data)
    except ValidationError as error:
        raise InvalidDeclaration(f"{path}: {describe_validation(error)}", file=str(path)) from None


def _print_findings(report: PolicyReport) -> None:
    out = console()
    if report.passes:
        out.print("The policy finds no problem: this declaration lets the campaign launch.")
        return
    count = len(report.findings)
    out.print(
        f"The policy finds {count} {'problem' if count == 1 else 'problems'}; "
        "the campaign cannot launch or resume until they are fixed:"
    )
    for finding in report.findings:
        out.print(f"  - {finding.code}: {finding.message}")


def _print_notices(declaration: DeclarationRead) -> None:
    out = console()
    for notice in declaration.notices:
        formula = _FORMULA_NAMES.get(notice.readability.formula, notice.readability.formula)
        out.print(
            f"  notice {notice.language.value}: sha256 {notice.sha256}, "
            f"{formula} {notice.readability.score:.1f}"
        )


@app.command()
@reports_errors
def declare(
    ctx: typer.Context,
    campaign: CampaignArgument,
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE.json",
            help='The declaration: {"items": [{"data_category", "data_use", "legal_basis", '
            '"controllers", "channels", "territories", "max_days", "purpose"}]}.',
        ),
    ],
) -> None:
    """Record a new version of the campaign's data-use declaration, with its notices (EN, FR),
    and say what the policy finds in it. The same items as the latest version change nothing."""
    state = state_of(ctx)
    declaration_in = _read_declaration(file)
    limits = consent.limits_from(state.settings.consent)

    def work(session: Session) -> tuple[str, int | None, DeclarationRead, PolicyReport]:
        found = resolve_campaign(session, campaign)
        before = consent.latest_version(session=session, campaign_id=found.id)
        declared = consent.declare(
            session=session,
            campaign_id=found.id,
            declaration_in=declaration_in,
            actor=state.actor,
            clock=state.clock,
            limits=limits,
        )
        report = consent.check_policy(session=session, campaign_id=found.id, limits=limits)
        return found.name, before, declared, report

    name, before, declared, report = state.database.run(work)
    out = console()
    if before == declared.version:
        out.print(
            f"Unchanged: version {declared.version} of the declaration of {name!r} already "
            "says this."
        )
    else:
        items = len(declared.items)
        out.print(
            f"Declared version {declared.version} of the data use of {name!r} "
            f"({items} {'item' if items == 1 else 'items'})."
        )
    _print_notices(declared)
    _print_findings(report)


@app.command("check-policy")
@reports_errors
def check_policy(ctx: typer.Context, campaign: CampaignArgument) -> None:
    """Check the campaign's latest declaration against the policy, as the launch gate does;
    exit 1 when it finds a problem."""
    state = state_of(ctx)
    limits = consent.limits_from(state.settings.consent)
    report = state.database.read(
        lambda session: consent.check_policy(
            session=session,
            campaign_id=resolve_campaign(session, campaign).id,
            limits=limits,
        )
    )
    if report.version is not None:
        console().print(f"Declaration version {report.version}:")
    _print_findings(report)
    if not report.passes:
        raise typer.Exit(EXIT_PROBLEM)


@app.command()
@reports_errors
def notice(
    ctx: typer.Context,
    campaign: CampaignArgument,
    lang: Annotated[NoticeLanguage, typer.Option("--lang", help="The notice's language.")],
    version: Annotated[
        int | None,
        typer.Option(
            "--version",
            min=1,
            help="A declaration version (default: the latest).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Print a notice exactly as stored (its SHA-256 is that of these bytes); its version,
    hash and readability go to stderr."""
    state = state_of(ctx)
    found = state.database.read(
        lambda session: consent.get_notice(
            session=session,
            campaign_id=resolve_campaign(session, campaign).id,
            language=lang,
            version=version,
        )
    )
    typer.echo(found.content, nl=False)
    formula = _FORMULA_NAMES.get(found.readability.formula, found.readability.formula)
    typer.echo(
        f"version {found.version}, {found.language.value}, sha256 {found.sha256}, "
        f"{formula} {found.readability.score:.1f}",
        err=True,
    )


#: Largest public-key file read, in bytes.
MAX_KEY_FILE_BYTES = 65_536


def _key_text(value: str) -> str:
    """A ``--public-key`` value: the key itself (base64url or PEM), or a file of keys."""
    path = Path(value)
    try:
        if path.is_file():
            if path.stat().st_size > MAX_KEY_FILE_BYTES:
                raise InvalidKeyMaterial(f"{path}: larger than {MAX_KEY_FILE_BYTES} bytes")
            return path.read_text(encoding="utf-8")
    except OSError as error:
        raise InvalidKeyMaterial(
            f"{path}: cannot be read ({error.strerror or 'I/O error'})"
        ) from None
    except UnicodeDecodeError:
        raise InvalidKeyMaterial(f"{path}: not UTF-8 text") from None
    return value


@app.command("verify-receipt")
@reports_errors
def verify_receipt(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(metavar="FILE", help="The receipt file (or bare JWS).")],
    public_keys: Annotated[
        list[str] | None,
        typer.Option(
            "--public-key",
            metavar="KEY",
            help="A trusted public key (base64url or PEM), or a file of them; repeatable. "
            "Default: the public key of the configured signing key.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Check a consent receipt offline, with nothing but public keys, and say what was agreed.
    A receipt that does not verify exits 2 with the reason's code."""
    state = state_of(ctx)
    if public_keys:
        trusted = load_verification_keys("\n".join(_key_text(value) for value in public_keys))
    else:
        trusted = verification_keys(state.settings.crypto.build_signing_key())
    verified = verify_receipt_file(file, trusted)
    out = console()
    out.print(f"The receipt verifies (key {verified.kid}).")
    out.print(verified.summary)


@app.command("public-key")
@reports_errors
def public_key(ctx: typer.Context) -> None:
    """Print the public key that verifies the receipts this deployment signs (base64url of
    the raw Ed25519 key, for regulators and members); its kid goes to stderr."""
    key = state_of(ctx).settings.crypto.build_signing_key()
    typer.echo(encode_public_key(key.public_key))
    note = " (the public DEVELOPMENT key: what it signs proves nothing)" if key.development else ""
    typer.echo(f"kid {key.kid}{note}", err=True)
