"""Rendering: a Django template to HTML, and HTML to a PDF/A-3b file with its record attached.

The PDF templates live in templates/pdf/ and are rendered by an engine of their own (with the
filters of `pdf_filters` built in, autoescaping on). WeasyPrint may fetch nothing but the
installed font files: a document depends on its record and on nothing else. WeasyPrint is
imported when a document is rendered, not when the API's URLs load.
"""

import io
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote, urlparse

from django.conf import settings
from django.template import Context, Engine
from pypdf import PdfReader

from governance.audit_chain import canonical_json
from governance.exports import fonts

PDF_VARIANT = "pdf/a-3b"
RECORD_FILENAME = "record.json"

_engine: Engine | None = None


def engine() -> Engine:
    """The template engine of the PDF documents (built once)."""
    global _engine
    if _engine is None:
        _engine = Engine(
            dirs=[str(settings.BASE_DIR / "templates")],
            builtins=["governance.exports.pdf_filters"],
            autoescape=True,
        )
    return _engine


def render_html(template_name: str, context: dict) -> str:
    """The document's HTML, with the font faces of `fonts` in its context."""
    return (
        engine()
        .get_template(template_name)
        .render(_context({**context, "font_faces": fonts.font_face_css()}))
    )


def _context(values: dict) -> Context:
    return Context(values, autoescape=True)


def fonts_only_fetcher():
    """A WeasyPrint URL fetcher that reads the installed font files and nothing else (no
    network, no other local file), failing the render on any other URL."""
    from weasyprint.urls import URLFetcher

    allowed = {str(path.resolve()) for path in fonts.font_files()}

    class FontsOnlyFetcher(URLFetcher):
        def fetch(self, url, headers=None):
            path = unquote(urlparse(url).path)
            if not url.startswith("file:") or path not in allowed:
                raise ValueError(f"a PDF document may not load {url}")
            return super().fetch(url, headers)

    return FontsOnlyFetcher(allowed_protocols={"file"}, fail_on_errors=True)


def _deduplicate_associated_files(document, pdf) -> None:
    import pydyf

    # WeasyPrint 70 lists each attachment twice in the catalog's /AF array (once from the
    # name tree, once from the file specification); one entry per file is what PDF/A-3 means.
    associated = pdf.catalog.get("AF")
    if associated:
        pdf.catalog["AF"] = pydyf.Array(dict.fromkeys(associated))


class ForbiddenResource(ValueError):
    """A document's HTML referred to something other than the installed fonts."""


@dataclass(frozen=True)
class RenderedPdf:
    data: bytes
    pages: int


def record_bytes(record: dict) -> bytes:
    """The attached record: the canonical JSON whose SHA-256 the document prints."""
    return canonical_json(record).encode()


def write_pdf(html: str, record: dict, *, generated_at: datetime, title: str) -> RenderedPdf:
    """Render `html` as PDF/A-3b, A4, with `record` attached as its data source (JSON)."""
    from weasyprint import HTML, Attachment
    from weasyprint.urls import FatalURLFetchingError

    fetcher = fonts_only_fetcher()
    moment = generated_at.astimezone(UTC).replace(tzinfo=None)
    attachment = Attachment(
        string=record_bytes(record),
        name=RECORD_FILENAME,
        description=f"Machine-readable record of {title}",
        created=moment,
        modified=moment,
        # PDF/A-3: the record is the data the visible document was made from.
        relationship="Data",
        url_fetcher=fetcher,
    )
    try:
        document = HTML(string=html, url_fetcher=fetcher, base_url=str(fonts.font_dir())).render()
    except FatalURLFetchingError as exc:
        # WeasyPrint's fatal fetch error is a BaseException; make it an ordinary failure.
        raise ForbiddenResource(str(exc.__cause__ or exc)) from None
    data = document.write_pdf(
        pdf_variant=PDF_VARIANT,
        attachments=[attachment],
        finisher=_deduplicate_associated_files,
    )
    return RenderedPdf(data=data, pages=len(document.pages))


def attached_record(data: bytes) -> bytes | None:
    """The record attached to a PDF made here (None if it has none)."""
    contents = PdfReader(io.BytesIO(data)).attachments.get(RECORD_FILENAME)
    return contents[0] if contents else None
