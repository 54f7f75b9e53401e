"""Thumbnails of a dataset's images: a small JPEG of each, made on first request and kept in media
storage under the dataset's own prefix, so a grid of a hundred images costs a hundred small files.

The cached copy is named by a hash of the image's stored path (never by anything a request says),
and the source is read only through `media_open`, which keeps every read inside the dataset's
media folder. Images shared by several samples share one thumbnail.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image, ImageOps, UnidentifiedImageError

from apps.datasets.models import Dataset
from apps.datasets.selectors import media_open

THUMB_SIZE = 256  # the longest side, in pixels; smaller images are not enlarged
QUALITY = 82
# A source larger than this is not decoded for a thumbnail (Pillow's own guard is twice this).
MAX_PIXELS = 64_000_000


@dataclass(frozen=True)
class Thumbnail:
    name: str  # its name in media storage
    etag: str  # a strong validator: the same name and size, the same bytes

    def open(self):
        return default_storage.open(self.name, "rb")


def thumbnails_folder(dataset: Dataset) -> str:
    """The folder of media storage that holds the dataset's thumbnails, and nothing else."""
    return f"datasets/{dataset.pk}/thumbs"


def thumbnail_name(dataset: Dataset, image: str) -> str:
    digest = hashlib.sha256(image.encode()).hexdigest()
    return f"{thumbnails_folder(dataset)}/{THUMB_SIZE}/{digest[:2]}/{digest}.jpg"


def _etag(name: str, size: int) -> str:
    return '"' + hashlib.sha256(f"{name}:{size}".encode()).hexdigest()[:24] + '"'


def thumbnail_of(dataset: Dataset, image: str) -> Thumbnail | None:
    """The thumbnail of one of the dataset's images (made and stored if it is not yet), or None
    when the image is missing, outside the dataset's media, or not an image Pillow reads."""
    name = thumbnail_name(dataset, image)
    try:
        return Thumbnail(name, _etag(name, default_storage.size(name)))
    except (FileNotFoundError, OSError):
        pass
    data = _render(dataset, image)
    if data is None:
        return None
    saved = default_storage.save(name, ContentFile(data))
    if saved != name:  # made at the same moment by another request: keep one copy
        default_storage.delete(saved)
    return Thumbnail(name, _etag(name, len(data)))


def _render(dataset: Dataset, image: str) -> bytes | None:
    stream = media_open(dataset, image)
    if stream is None:
        return None
    with stream:
        try:
            with Image.open(stream) as source:
                if source.width * source.height > MAX_PIXELS:
                    return None
                # draft() lets the JPEG decoder scale down as it reads: far less work for photos.
                source.draft("RGB", (THUMB_SIZE, THUMB_SIZE))
                picture = ImageOps.exif_transpose(source)
                # Bilinear (antialiased when shrinking, in Pillow) costs half what Lanczos
                # does, and at thumbnail size the two look alike.
                picture.thumbnail((THUMB_SIZE, THUMB_SIZE), Image.Resampling.BILINEAR)
                if picture.mode in ("RGBA", "LA", "P"):
                    picture = picture.convert("RGBA")
                    flat = Image.new("RGB", picture.size, (255, 255, 255))
                    flat.paste(picture, mask=picture.getchannel("A"))
                    picture = flat
                elif picture.mode != "RGB":
                    picture = picture.convert("RGB")
                out = io.BytesIO()
                picture.save(out, format="JPEG", quality=QUALITY, optimize=False)
                return out.getvalue()
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError):
            return None
