"""Personal data never reaches a log line: the Pii type and the masking processor."""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from pydantic import BaseModel, ValidationError

from parrain.config import LogSettings
from parrain.kit.pii import MASK, Pii, is_sensitive_key, mask_personal_data
from parrain.logging import configure_logging, get_logger

EMAIL = "ann.lee@example.org"
PAYPAL = "ann-paypal@example.org"


def test_pii_shows_only_a_mask_in_every_textual_form() -> None:
    email = Pii(EMAIL)
    shown = [
        str(email),
        repr(email),
        f"{email}",
        f"{email!r}",
        f"{email!s}",
        f"{email:>20}",
        format(email),
        "%s" % email,  # noqa: UP031
        "%r" % email,  # noqa: UP031
        "{}".format(email),  # noqa: UP032
        str([email]),
        repr({"email": email}),
        str((email,)),
    ]
    assert all(EMAIL not in text for text in shown)
    assert shown[:5] == ["Pii('***')"] * 5
    assert shown[5] == "          Pii('***')"
    assert shown[6:10] == ["Pii('***')"] * 4
    assert shown[10:] == ["[Pii('***')]", "{'email': Pii('***')}", "(Pii('***'),)"]


def test_reveal_is_the_one_way_to_the_value() -> None:
    assert Pii(EMAIL).reveal() == EMAIL
    assert Pii("").reveal() == ""


def test_equality_and_hashing_use_the_value() -> None:
    assert Pii(EMAIL) == Pii(EMAIL)
    assert Pii(EMAIL) != Pii(PAYPAL)
    assert Pii(EMAIL) != EMAIL  # a Pii is never mistaken for the bare string
    assert hash(Pii(EMAIL)) == hash(Pii(EMAIL))
    assert len({Pii(EMAIL), Pii(EMAIL), Pii(PAYPAL)}) == 2
    assert {Pii(EMAIL): "member-1"}[Pii(EMAIL)] == "member-1"


def test_pii_is_immutable_and_survives_copy_and_pickle() -> None:
    email = Pii(EMAIL)
    with pytest.raises(AttributeError, match="immutable"):
        email._value = "other@example.org"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        email.extra = 1  # type: ignore[attr-defined]
    assert copy.copy(email).reveal() == EMAIL
    assert copy.deepcopy(email) == email
    assert pickle.loads(pickle.dumps(email)).reveal() == EMAIL


def test_pii_wraps_only_strings_and_does_not_quote_what_it_refused() -> None:
    with pytest.raises(TypeError) as caught:
        Pii(447700900123)  # type: ignore[arg-type]
    assert str(caught.value) == "Pii wraps a str, not int"


class MemberContact(BaseModel):
    email: Pii
    member_id: str


def test_pydantic_models_take_text_and_dump_json_masked() -> None:
    contact = MemberContact(email=EMAIL, member_id="m-1")  # type: ignore[arg-type]
    assert contact.email == Pii(EMAIL)
    assert MemberContact(email=Pii(EMAIL), member_id="m-1") == contact
    assert MemberContact.model_validate_json(f'{{"email": "{EMAIL}", "member_id": "m-1"}}') == (
        contact
    )
    assert contact.model_dump_json() == '{"email":"***","member_id":"m-1"}'
    assert contact.model_dump() == {"email": Pii(EMAIL), "member_id": "m-1"}
    assert EMAIL not in repr(contact)
    assert MemberContact.model_json_schema()["properties"]["email"] == {
        "title": "Email",
        "type": "string",
    }
    with pytest.raises(ValidationError):
        MemberContact(email=12, member_id="m-1")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "key",
    [
        "email",
        "member_email",
        "emailAddress",
        "e_mail",
        "phone",
        "phone_number",
        "telephone",
        "paypal",
        "paypal_receiver",
        "PayPalReceiver",
        "username",
        "user_name",
        "userName",
        "ip",
        "client_ip",
        "IPAddress",
        "ipv4",
        "user_agent",
        "userAgent",
        "HTTP_USER_AGENT",
        "x-forwarded-for",
        "remote_addr",
    ],
)
def test_keys_named_like_personal_data_are_sensitive(key: str) -> None:
    assert is_sensitive_key(key)


@pytest.mark.parametrize(
    "key",
    ["event", "member_id", "recipient", "zip", "shipping", "description", "campaign", "amount"],
)
def test_ordinary_keys_are_not_sensitive(key: str) -> None:
    assert not is_sensitive_key(key)


def test_the_processor_masks_pii_at_any_depth_and_personal_keys() -> None:
    logged: dict[str, Any] = {
        "event": "member enrolled",
        "member_id": "m-1",
        "contact": Pii(EMAIL),
        "nested": {"list": [Pii(PAYPAL), 3, ("ok", Pii(EMAIL))], "kept": "campaign-uk"},
        "email": EMAIL,
        "paypal_receiver": PAYPAL,
        "userAgent": "Mozilla/5.0 (Ann's phone)",
        "client_ip": "203.0.113.7",
        "phone": 447700900123,
        "profile": {"username": "annlee", "photo_ref": "photo-1"},
        "email_verified": True,
        "phone_number": None,
        "recipients": {Pii(EMAIL), Pii(PAYPAL)},
    }
    masked = mask_personal_data(None, "info", logged)
    assert masked == {
        "event": "member enrolled",
        "member_id": "m-1",
        "contact": MASK,
        "nested": {"list": [MASK, 3, ("ok", MASK)], "kept": "campaign-uk"},
        "email": MASK,
        "paypal_receiver": MASK,
        "userAgent": MASK,
        "client_ip": MASK,
        "phone": MASK,
        "profile": {"username": MASK, "photo_ref": "photo-1"},
        "email_verified": True,
        "phone_number": None,
        "recipients": [MASK, MASK],
    }
    text = json.dumps(masked)
    for secret in (EMAIL, PAYPAL, "annlee", "203.0.113.7", "Mozilla", "447700900123"):
        assert secret not in text
    # the caller's own structures are left as they were
    assert logged["nested"]["list"][0] == Pii(PAYPAL)
    assert logged["profile"]["username"] == "annlee"


def test_the_processor_survives_cycles_and_masks_what_is_too_deep() -> None:
    loop: list[Any] = [Pii(EMAIL)]
    loop.append(loop)
    masked = mask_personal_data(None, "info", {"loop": loop})
    assert EMAIL not in json.dumps(masked, default=str)
    deep: Any = "bottom"
    for _ in range(20):
        deep = {"level": deep}
    assert "bottom" not in json.dumps(mask_personal_data(None, "info", {"deep": deep}))


@pytest.fixture
def restored_structlog() -> Iterator[None]:
    saved = structlog.get_config()
    yield
    structlog.contextvars.clear_contextvars()
    structlog.configure(**saved)


@pytest.mark.parametrize("json_lines", [True, False])
@pytest.mark.usefixtures("restored_structlog")
def test_a_real_log_line_shows_only_the_mask(
    json_lines: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(LogSettings(level="DEBUG", json_lines=json_lines))
    structlog.contextvars.bind_contextvars(request_email=Pii(PAYPAL))
    get_logger("test").info(
        "member contact changed",
        member_id="m-42",
        new_email=Pii(EMAIL),
        contact={"email": EMAIL, "channel": "app"},
        note=f"sent to {Pii(EMAIL)}",
    )
    line = capsys.readouterr().err
    assert "member contact changed" in line
    assert "m-42" in line
    assert "app" in line
    assert EMAIL not in line
    assert PAYPAL not in line
    assert "ann.lee" not in line
    if json_lines:
        record = json.loads(line)
        assert record["new_email"] == MASK
        assert record["request_email"] == MASK
        assert record["contact"] == {"email": MASK, "channel": "app"}
        assert record["note"] == "sent to Pii('***')"
        assert record["level"] == "info"
    else:
        assert "new_email=***" in line
        assert "request_email=***" in line


@pytest.mark.usefixtures("restored_structlog")
def test_the_level_filter_still_applies(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LogSettings(level="WARNING", json_lines=True))
    get_logger("test").info("quiet", email=Pii(EMAIL))
    get_logger("test").warning("loud", email=Pii(EMAIL))
    lines = capsys.readouterr().err.splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["loud"]
