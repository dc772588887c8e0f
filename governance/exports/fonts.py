"""The fonts every PDF is set in, from the Debian package fonts-dejavu-core.

The files are referenced by absolute file:// URLs under a family name of our own, so a
document never silently picks up whatever fonts a machine happens to have: the same record
renders to the same layout everywhere, and a missing package is an error, not a fallback.
`make system-deps` (run by `make test`) installs the package.
"""

from pathlib import Path

from django.conf import settings

from governance.errors import GovernanceError

DEFAULT_FONT_DIR = "/usr/share/fonts/truetype/dejavu"
FAMILY = "Stagegate Sans"
MONO_FAMILY = "Stagegate Mono"
# (family, CSS weight, CSS style, file name)
FACES = (
    (FAMILY, "normal", "normal", "DejaVuSans.ttf"),
    (FAMILY, "bold", "normal", "DejaVuSans-Bold.ttf"),
    (FAMILY, "normal", "italic", "DejaVuSans-Oblique.ttf"),
    (FAMILY, "bold", "italic", "DejaVuSans-BoldOblique.ttf"),
    (MONO_FAMILY, "normal", "normal", "DejaVuSansMono.ttf"),
    (MONO_FAMILY, "bold", "normal", "DejaVuSansMono-Bold.ttf"),
)


class FontsMissing(GovernanceError):
    """The PDF fonts are not installed; documents are not rendered with substitutes."""

    status_code = 503


def font_dir() -> Path:
    return Path(getattr(settings, "STAGEGATE_PDF_FONT_DIR", DEFAULT_FONT_DIR))


def font_files() -> list[Path]:
    """Every font file the documents use, refusing to go on when one is missing."""
    directory = font_dir()
    files = [directory / name for *_, name in FACES]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise FontsMissing(
            f"PDF fonts missing from {directory}: {', '.join(missing)}; install the Debian "
            "package fonts-dejavu-core (make system-deps)"
        )
    return files


def font_face_css() -> str:
    """@font-face rules naming the installed files by absolute file:// URL."""
    font_files()
    directory = font_dir()
    rules = [
        f'@font-face {{ font-family: "{family}"; font-weight: {weight}; font-style: {style}; '
        f'src: url("{(directory / name).as_uri()}"); }}'
        for family, weight, style, name in FACES
    ]
    return "\n".join(rules)
