"""The web app as the gateway serves it: every screen's URL loads the app,
assets go out compressed and cached for good, the page itself is revalidated."""

import gzip
import os

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from gateway.web import IMMUTABLE, REVALIDATE, WebApp, accepted

INDEX = "<!doctype html><title>销售 CRM</title><div id=app></div>".encode()
SCRIPT = b"console.log('app');" * 100


@pytest.fixture
def dist(tmp_path):
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_bytes(INDEX)
    (tmp_path / "index.html.gz").write_bytes(gzip.compress(INDEX))
    (tmp_path / "assets" / "index-Ab12.js").write_bytes(SCRIPT)
    (tmp_path / "assets" / "index-Ab12.js.gz").write_bytes(gzip.compress(SCRIPT))
    (tmp_path / "assets" / "index-Ab12.js.br").write_bytes(b"brotli bytes")
    (tmp_path / "favicon.svg").write_bytes(b"<svg/>")
    (tmp_path.parent / "secret.txt").write_bytes(b"not for the web")
    return tmp_path


def get(app, path, method="GET", **headers):
    return app.serve(Request(EnvironBuilder(path=path, method=method, headers=headers).get_environ()))


def test_the_root_and_every_screen_load_the_app_and_are_revalidated(dist):
    app = WebApp(dist)
    for path in ("/", "/customers", "/customers/6f1c2e", "/knowledge/questions/abc"):
        r = get(app, path)
        assert r.status_code == 200, path
        assert r.get_data() == INDEX
        assert r.headers["Content-Type"] == "text/html; charset=utf-8"
        assert r.headers["Cache-Control"] == REVALIDATE
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]


def test_hashed_assets_are_cached_for_a_year_and_sent_compressed(dist):
    app = WebApp(dist)
    r = get(app, "/assets/index-Ab12.js", **{"Accept-Encoding": "gzip, deflate, br, zstd"})
    assert r.status_code == 200
    assert r.headers["Content-Encoding"] == "br"
    assert r.get_data() == b"brotli bytes"
    assert r.headers["Cache-Control"] == IMMUTABLE
    assert r.headers["Vary"] == "Accept-Encoding"
    assert r.headers["Content-Type"] == "text/javascript; charset=utf-8"

    r = get(app, "/assets/index-Ab12.js", **{"Accept-Encoding": "gzip"})
    assert r.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(r.get_data()) == SCRIPT
    assert int(r.headers["Content-Length"]) < len(SCRIPT) / 5

    r = get(app, "/assets/index-Ab12.js", **{"Accept-Encoding": "br;q=0, gzip;q=0"})
    assert "Content-Encoding" not in r.headers
    assert r.get_data() == SCRIPT

    r = get(app, "/")
    assert "Content-Encoding" not in r.headers
    r = get(app, "/", **{"Accept-Encoding": "gzip"})
    assert gzip.decompress(r.get_data()) == INDEX


def test_a_repeated_load_is_answered_not_modified(dist):
    app = WebApp(dist)
    first = get(app, "/assets/index-Ab12.js", **{"Accept-Encoding": "br"})
    again = get(app, "/assets/index-Ab12.js", **{"Accept-Encoding": "br",
                                                  "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    assert again.get_data() == b""
    # The same file in another encoding is another representation.
    other = get(app, "/assets/index-Ab12.js", **{"Accept-Encoding": "gzip",
                                                  "If-None-Match": first.headers["ETag"]})
    assert other.status_code == 200


def test_a_missing_asset_is_a_404_never_the_page(dist):
    app = WebApp(dist)
    for path in ("/assets/index-OLD.js", "/robots.txt", "/assets/"):
        r = get(app, path)
        assert r.status_code == 404, path
        assert INDEX not in r.get_data()


def test_nothing_outside_the_build_is_served(dist):
    app = WebApp(dist)
    for path in ("/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt"):
        r = get(app, path)
        assert b"not for the web" not in r.get_data(), path


def test_head_get_only_and_a_missing_build_says_so(dist, tmp_path_factory):
    app = WebApp(dist)
    r = get(app, "/favicon.svg", method="HEAD")
    assert r.status_code == 200 and r.get_data() == b""
    assert r.headers["Content-Length"] == "6"
    assert r.headers["Cache-Control"] == "public, max-age=3600"
    assert get(app, "/customers", method="POST").status_code == 405
    empty = WebApp(tmp_path_factory.mktemp("nothing"))
    r = get(empty, "/customers")
    assert r.status_code == 503
    assert b"make web" in r.get_data()


def test_a_rebuild_is_served_without_a_restart(dist):
    app = WebApp(dist)
    assert get(app, "/").get_data() == INDEX
    newer = INDEX.replace(b"div", b"main")
    (dist / "index.html").write_bytes(newer)
    st = (dist / "index.html").stat()
    os.utime(dist / "index.html", (st.st_atime, st.st_mtime + 5))
    assert get(app, "/").get_data() == newer


def test_accept_encoding_parsing():
    assert accepted("gzip, deflate, br, zstd") == {"gzip", "deflate", "br", "zstd"}
    assert accepted("br;q=0, gzip;q=0.5") == {"gzip"}
    assert accepted("") == set()
