"""What every page shares: the language, the error page, the static files, CSRF tokens."""

from __future__ import annotations

import base64
import secrets

import pytest
from fastapi.testclient import TestClient

from parrain.config import CryptoSettings, Settings, WebSettings
from parrain.kit.errors import InvalidKeyMaterial, KeysNotConfigured
from parrain.web.forms import CsrfFailed, check_csrf, csrf_token

HTML = {"accept": "text/html,application/xhtml+xml"}


def test_a_browser_gets_an_error_page_in_its_language(client: TestClient) -> None:
    english = client.get("/nowhere", headers=HTML)
    assert english.status_code == 404
    assert english.headers["content-type"].startswith("text/html")
    assert "Page not found" in english.text
    assert "<code>not_found</code>" in english.text
    assert "There is nothing at this address." in english.text
    french = client.get("/nowhere", headers={**HTML, "accept-language": "fr-FR,fr;q=0.9"})
    assert french.status_code == 404
    assert '<html lang="fr">' in french.text
    assert "Page introuvable" in french.text
    assert "Il n&#39;y a rien à cette adresse." in french.text
    assert french.headers["content-language"] == "fr"
    assert french.headers["cache-control"] == "no-store"


def test_the_api_keeps_answering_json_to_browsers(client: TestClient) -> None:
    answer = client.get("/v1/nowhere", headers=HTML)
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"
    assert client.get("/nowhere").json()["error"]["code"] == "not_found"  # not a browser


def test_choosing_a_language_sticks(client: TestClient) -> None:
    chosen = client.get("/nowhere?lang=fr", headers={**HTML, "accept-language": "en"})
    assert "Page introuvable" in chosen.text
    assert chosen.cookies.get("parrain_lang") == "fr"
    again = client.get("/elsewhere", headers={**HTML, "accept-language": "en"})
    assert "Page introuvable" in again.text
    back = client.get("/elsewhere?lang=en", headers=HTML)
    assert "Page not found" in back.text
    # The switch links to the same page in the other language.
    assert 'href="http://testserver/elsewhere?lang=fr"' in back.text


def test_an_unknown_language_falls_back_to_english(client: TestClient) -> None:
    answer = client.get("/nowhere?lang=xx", headers={**HTML, "accept-language": "de-DE"})
    assert '<html lang="en">' in answer.text
    assert "parrain_lang" not in answer.cookies


def test_the_stylesheet_is_served(client: TestClient) -> None:
    answer = client.get("/static/parrain.css")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/css")
    assert ".switch" in answer.text


def test_a_csrf_token_belongs_to_its_session() -> None:
    mine, theirs = secrets.token_bytes(32), secrets.token_bytes(32)
    token = csrf_token(mine)
    check_csrf(mine, token)
    # One character changed: always another one than the last (a fixed "A" was the same
    # character, hence a valid token, once in 64 runs).
    altered = token[:-1] + ("B" if token.endswith("A") else "A")
    for submitted in (None, "", csrf_token(theirs), altered):
        with pytest.raises(CsrfFailed) as raised:
            check_csrf(mine, submitted)
        assert raised.value.status_code == 403
        assert raised.value.code == "csrf_failed"
    with pytest.raises(ValueError, match="32 random bytes"):
        csrf_token(b"short")


def test_the_session_key_comes_from_settings() -> None:
    development = CryptoSettings(allow_development_keys=True)
    assert len(WebSettings().session_key_bytes(development)) >= 32
    with pytest.raises(KeysNotConfigured):
        WebSettings().session_key_bytes(CryptoSettings())
    key = secrets.token_bytes(32)

    configured = WebSettings(session_key=base64.b64encode(key).decode())
    assert configured.session_key_bytes(CryptoSettings()) == key
    with pytest.raises(InvalidKeyMaterial, match="at least 32 bytes"):
        WebSettings(session_key=base64.b64encode(b"x" * 16).decode()).session_key_bytes(
            CryptoSettings()
        )
    with pytest.raises(InvalidKeyMaterial, match="base64"):
        WebSettings(session_key="not base64!").session_key_bytes(CryptoSettings())
    assert Settings().web.cookie_secure is True
