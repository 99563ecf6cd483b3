"""A database URL's password shows in no printed, serialised, copied or pickled form.

Pure: the URLs are parsed, never connected to.
"""

from __future__ import annotations

import copy
import json
import logging
import pickle
from pathlib import Path

import pytest

from sibila_sqlmig.backends import backend_for
from sibila_sqlmig.config import DatabaseURL, Settings, load_settings, parse_database_url
from sibila_sqlmig.errors import ConfigError

SECRET = "s3cr3t-pw"
URLS = {
    "postgres": f"postgresql://app:{SECRET}@db.example:6543/shop?sslmode=disable",
    "mysql": f"mysql://root:{SECRET}@127.0.0.1:3307/shop?charset=utf8mb4",
    "query": f"postgresql://app@db.example:6543/shop?password={SECRET}&sslmode=disable",
}
FORMS = pytest.mark.parametrize("text", list(URLS.values()), ids=list(URLS))


def _url(text: str) -> DatabaseURL:
    return parse_database_url(text, base_dir=Path("/base"))


def _settings(text: str) -> Settings:
    return load_settings(database=text, migrations="/m", environ={}, config="/dev/null")


def _hidden(*shown: object) -> None:
    for value in shown:
        assert SECRET not in (value if isinstance(value, str) else repr(value))


@FORMS
def test_printed_forms_hide_the_password(text: str) -> None:
    url = _url(text)
    # The formatting logging does; as a tuple, "%s" % url spread its fields (password too).
    percent = "%s %r" % (url, url) + "%s" % url  # noqa: UP031
    _hidden(str(url), repr(url), url.redacted(), f"{url}", f"{url!r}", percent,
            repr([url]), repr({"db": url}), repr((url,)))
    assert ":***@" in url.redacted()


@FORMS
def test_settings_printed_forms_hide_the_password(text: str) -> None:
    settings = _settings(text)
    _hidden(repr(settings), str(settings), repr(settings._asdict()), f"{settings}",
            json.dumps(settings, default=str), json.dumps(settings._asdict(), default=str))


@FORMS
def test_json_refuses_the_url_and_its_default_str_is_redacted(text: str) -> None:
    url = _url(text)
    with pytest.raises(TypeError):
        json.dumps(url)  # not a tuple any more, so not a JSON list of its fields
    _hidden(json.dumps(url, default=str), json.dumps({"url": url}, default=repr))


@FORMS
def test_logging_hides_the_password(text: str, caplog: pytest.LogCaptureFixture) -> None:
    url, settings = _url(text), _settings(text)
    log = logging.getLogger("sibila_sqlmig.test_secrets")
    with caplog.at_level(logging.DEBUG, logger=log.name):
        log.info("url %s %r", url, url)
        log.info("settings %s", settings)
        log.info("containers %r", {"url": url, "settings": settings, "list": [url]})
        log.info(url)
        log.info(settings)
    assert len(caplog.records) == 5
    _hidden(caplog.text, *(record.getMessage() for record in caplog.records))


@FORMS
def test_copies_hide_the_password_and_keep_it_for_connecting(text: str) -> None:
    url, settings = _url(text), _settings(text)
    for copied in (copy.copy(url), copy.deepcopy(url)):
        _hidden(repr(copied), str(copied))
        assert copied == url and copied.password == SECRET
    for copied_settings in (copy.copy(settings), copy.deepcopy(settings)):
        _hidden(repr(copied_settings))
        assert copied_settings == settings and copied_settings.database.password == SECRET


@FORMS
def test_the_url_is_not_a_tuple(text: str) -> None:
    url = _url(text)
    assert not isinstance(url, tuple)
    assert not hasattr(url, "_asdict") and not hasattr(url, "_replace")
    with pytest.raises(TypeError):
        url[5]  # type: ignore[index]
    with pytest.raises(TypeError):
        _, _, _, _, _, _, _, _, _ = url  # type: ignore[misc]


@FORMS
def test_vars_shows_nothing(text: str) -> None:
    url = _url(text)
    try:
        found = vars(url)
    except TypeError:
        return
    _hidden(repr(found))


@FORMS
def test_pickling_is_refused_with_a_clear_message(text: str) -> None:
    url, settings = _url(text), _settings(text)
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        for value in (url, settings, [url]):
            with pytest.raises(TypeError, match=r"not pickled.*URL text"):
                pickle.dumps(value, protocol)
        with pytest.raises(TypeError, match="not pickled"):
            url.__reduce_ex__(protocol)


def test_a_url_without_a_password_still_pickles() -> None:
    settings = _settings("sqlite:///app.db")
    assert pickle.loads(pickle.dumps(settings)) == settings
    url = _url("postgresql://app@db.example/shop?sslmode=disable")
    assert pickle.loads(pickle.dumps(url)) == url


@FORMS
def test_public_attributes_other_than_password_hold_no_secret(text: str) -> None:
    url = _url(text)
    for name in dir(url):
        if name.startswith("_") or name == "password":
            continue
        value = getattr(url, name)
        if callable(value):
            try:
                value = value()
            except TypeError:  # needs arguments: nothing to scrape without them
                continue
        _hidden(str(value), repr(value))


@FORMS
def test_the_password_is_still_there_for_connecting(text: str) -> None:
    url = _url(text)
    assert url.password == SECRET
    assert url == _url(text) and hash(url) == hash(_url(text))
    assert url != _url(text.replace(SECRET, "other-pw"))
    # Driver messages that quote the password are scrubbed, wherever the URL gave it.
    backend = backend_for(_settings(text))
    assert backend.scrub(f"auth failed for {SECRET!r}") == "auth failed for '***'"


def test_parsing_round_trips_the_other_fields() -> None:
    url = _url(f"postgres://app:{SECRET}@db.example:6543/shop"
               "?sslmode=require&application_name=deploy")
    assert (url.dialect, url.host, url.port, url.user, url.database) == (
        "postgresql", "db.example", 6543, "app", "shop")
    assert url.query == (("sslmode", "require"), ("application_name", "deploy"))
    assert url.redacted() == ("postgresql://app:***@db.example:6543/shop"
                              "?sslmode=require&application_name=deploy")
    assert _url(url.redacted().replace("***", SECRET)) == url


def test_a_password_in_the_query_becomes_the_password() -> None:
    url = _url(URLS["query"])
    assert url.password == SECRET
    assert url.query == (("sslmode", "disable"),)  # so the driver gets password= once
    assert url.redacted() == "postgresql://app:***@db.example:6543/shop?sslmode=disable"


def test_a_password_given_twice_is_refused_without_quoting_it() -> None:
    with pytest.raises(ConfigError, match="more than once") as caught:
        _url(f"postgresql://app:{SECRET}@db/shop?password=other-{SECRET}")
    _hidden(str(caught.value))


def test_other_secret_query_values_are_redacted_and_not_pickled() -> None:
    url = _url(f"postgresql://app@db/shop?sslpassword={SECRET}&sslmode=require")
    _hidden(str(url), repr(url), url.redacted())
    assert url.redacted() == "postgresql://app@db/shop?sslpassword=***&sslmode=require"
    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(url)


@pytest.mark.parametrize("text", [f"postgresql://app:{SECRET}@db:port/shop",
                                  f"postgresql://app:{SECRET}@db/",
                                  f"mysql://app:{SECRET}@/shop"])
def test_parse_errors_do_not_quote_the_password(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _url(text)
    _hidden(str(caught.value))


def test_the_url_is_immutable() -> None:
    url = _url(URLS["postgres"])
    with pytest.raises(AttributeError):
        url.host = "elsewhere"
    with pytest.raises(AttributeError):
        del url.user
    assert url.host == "db.example"


def test_a_password_with_a_slash_is_not_echoed_by_a_parse_error() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_database_url("postgresql://app:Sec/retPw@db:5432/app", base_dir=Path("/"))
    assert "Sec" not in str(caught.value) and "%2F" in str(caught.value)
