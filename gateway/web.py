"""The web app, served by the gateway at / (the API stays at /api).

`make` builds web/dist with every file already compressed (brotli and gzip
beside the original), so a request costs a dictionary lookup, not a
compression. Hashed assets (/assets/*) never change under their name and are
cached for a year; index.html is revalidated on every load, so a new build
reaches users on their next visit. Any other path without a file extension
is a screen of the app (/customers/<id>): it answers index.html, and the
app's router takes it from there after a reload or on a deep link.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import posixpath
from dataclasses import dataclass
from pathlib import Path

from werkzeug.wrappers import Request, Response

from services.common import config

ROOT = Path(__file__).resolve().parents[1]
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
SHORT = "public, max-age=3600"
# Element Plus sets inline styles and the app loads nothing from elsewhere.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
       "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
TEXT_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
              ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml",
              ".json": "application/json; charset=utf-8", ".txt": "text/plain; charset=utf-8"}
ENCODINGS = (("br", ".br"), ("gzip", ".gz"))


@dataclass(frozen=True)
class Variant:
    body: bytes
    etag: str


def dist_dir() -> Path:
    configured = Path(str(config.get("WEB_DIST", "web/dist")))
    return configured if configured.is_absolute() else ROOT / configured


def accepted(header: str) -> set[str]:
    """The encodings an Accept-Encoding header allows (q=0 refuses one)."""
    out = set()
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        q = params.strip()
        if q.startswith("q="):
            try:
                if float(q[2:]) == 0:
                    continue
            except ValueError:
                continue
        if name.strip():
            out.add(name.strip().lower())
    return out


class WebApp:
    """Files of one build directory, read once and kept (a build is a few
    hundred kilobytes); a file whose modification time changed is re-read,
    so a rebuild while the gateway runs is served at once."""

    def __init__(self, root: Path | None = None):
        self.root = root
        self._cache: dict[Path, tuple[float, Variant]] = {}

    def _dir(self) -> Path:
        return self.root or dist_dir()

    def _read(self, path: Path) -> Variant | None:
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return None
        hit = self._cache.get(path)
        if hit and hit[0] == mtime:
            return hit[1]
        try:
            body = path.read_bytes()
        except OSError:
            return None
        variant = Variant(body, '"' + hashlib.sha256(body).hexdigest()[:20] + '"')
        self._cache[path] = (mtime, variant)
        return variant

    def _resolve(self, url_path: str) -> tuple[Path | None, bool]:
        """(the file to send, whether it is the app's index for a screen)."""
        root = self._dir()
        clean = posixpath.normpath("/" + url_path.lstrip("/")).lstrip("/")
        if clean in ("", "."):
            return root / "index.html", True
        candidate = (root / clean).resolve()
        inside = candidate == root.resolve() or root.resolve() in candidate.parents
        if inside and candidate.is_file():
            return candidate, candidate.name == "index.html"
        # /assets/x.js that is not there must not answer HTML: a stale page
        # asking for the chunk of an older build gets a plain 404.
        if clean.split("/")[0] == "assets" or os.path.splitext(clean)[1]:
            return None, False
        return root / "index.html", True

    def serve(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return Response("method not allowed", status=405, headers={"Allow": "GET, HEAD"},
                            content_type="text/plain; charset=utf-8")
        path, is_index = self._resolve(request.path)
        if path is None:
            return Response("not found", status=404, content_type="text/plain; charset=utf-8")
        plain = self._read(path)
        if plain is None:
            if is_index:
                return Response(
                    "The web app is not built yet: run `make web` (make run does it).",
                    status=503, content_type="text/plain; charset=utf-8")
            return Response("not found", status=404, content_type="text/plain; charset=utf-8")

        hashed = path.resolve().relative_to(self._dir().resolve()).parts[0] == "assets"
        headers = {
            "Content-Type": TEXT_TYPES.get(path.suffix)
            or mimetypes.guess_type(path.name)[0] or "application/octet-stream",
            "Cache-Control": IMMUTABLE if hashed else (REVALIDATE if is_index else SHORT),
            "X-Content-Type-Options": "nosniff",
        }
        if is_index:
            headers["Content-Security-Policy"] = CSP
            headers["Referrer-Policy"] = "same-origin"
            headers["X-Frame-Options"] = "DENY"

        body, etag = plain.body, plain.etag
        can = accepted(request.headers.get("Accept-Encoding", ""))
        for name, ext in ENCODINGS:
            if name in can:
                packed = self._read(path.with_name(path.name + ext))
                if packed is not None:
                    body, etag = packed.body, packed.etag[:-1] + f"-{name}" + '"'
                    headers["Content-Encoding"] = name
                    break
        headers["Vary"] = "Accept-Encoding"
        headers["ETag"] = etag
        if etag in {t.strip() for t in request.headers.get("If-None-Match", "").split(",")}:
            return Response(status=304, headers={k: v for k, v in headers.items()
                                                 if k not in ("Content-Type",)})
        response = Response(b"" if request.method == "HEAD" else body, status=200,
                            headers=headers)
        response.headers["Content-Length"] = str(len(body))
        return response
