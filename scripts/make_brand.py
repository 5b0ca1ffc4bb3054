"""Draw the integration's brand images into custom_components/kinesis_video/brand/.

    .venv/bin/python scripts/make_brand.py

Home Assistant 2026.3+ serves a custom integration's own brand/ folder at
/api/brands/integration/kinesis_video/<image>. The images follow the brands
repository's rules: PNG with a transparent background, trimmed; icon 256x256
(@2x 512x512); logo landscape, shortest side 128 (@2x 256). The drawing is
original: a video camera whose body is a strip of film, and for the logo the
same camera followed by film frames. Drawn large and scaled down for smooth
edges; running the script again gives the same images.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parent.parent / "custom_components/kinesis_video/brand"

NAVY = (31, 58, 95, 255)
ORANGE = (245, 154, 35, 255)
WHITE = (255, 255, 255, 255)
CLEAR = (0, 0, 0, 0)

# Drawing units: the camera is about 1000 wide; everything is drawn at SCALE
# times that, then trimmed and scaled down.
SCALE = 4


def _box(*values: float) -> list[float]:
    return [v * SCALE for v in values]


def _camera(draw: ImageDraw.ImageDraw, x: float = 0) -> None:
    """A video camera: film-strip body, lens, and lens hood, its left edge at x."""
    draw.rounded_rectangle(_box(x + 0, 0, x + 660, 520), radius=90 * SCALE, fill=NAVY)
    # Sprocket holes along the top and bottom edges of the body.
    for i in range(6):
        left = x + 70 + i * 95
        for top in (40, 430):
            draw.rounded_rectangle(
                _box(left, top, left + 50, top + 50), radius=12 * SCALE, fill=WHITE
            )
    # Lens: white ring, orange glass.
    draw.ellipse(_box(x + 180, 110, x + 480, 410), fill=WHITE)
    draw.ellipse(_box(x + 225, 155, x + 435, 365), fill=ORANGE)
    draw.ellipse(_box(x + 290, 190, x + 350, 250), fill=WHITE)  # glint
    # Lens hood: a trapezoid widening to the right.
    draw.polygon(
        [
            (v * SCALE)
            for point in ((x + 680, 190), (x + 900, 60), (x + 900, 460), (x + 680, 330))
            for v in point
        ],
        fill=NAVY,
    )


def _frames(draw: ImageDraw.ImageDraw, x: float, count: int) -> None:
    """Film frames trailing the camera: what the stream keeps."""
    for i in range(count):
        left = x + i * 330
        draw.rounded_rectangle(
            _box(left, 70, left + 300, 450), radius=40 * SCALE, fill=ORANGE
        )
        draw.rounded_rectangle(
            _box(left + 40, 140, left + 260, 380), radius=20 * SCALE, fill=WHITE
        )
        for top in (92, 400):
            for j in range(3):
                hole = left + 60 + j * 75
                draw.rounded_rectangle(
                    _box(hole, top, hole + 30, top + 28),
                    radius=8 * SCALE,
                    fill=WHITE,
                )


def _trimmed(image: Image.Image) -> Image.Image:
    box = image.getchannel("A").getbbox()
    assert box is not None
    return image.crop(box)


def _fit(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale ``image`` to fit width x height and center it on a clear canvas."""
    ratio = min(width / image.width, height / image.height)
    size = (max(1, round(image.width * ratio)), max(1, round(image.height * ratio)))
    scaled = image.resize(size, Image.Resampling.LANCZOS)
    canvas = Image.new("RGBA", (width, height), CLEAR)
    canvas.alpha_composite(scaled, ((width - size[0]) // 2, (height - size[1]) // 2))
    return canvas


def icon() -> Image.Image:
    """The camera alone, trimmed."""
    image = Image.new("RGBA", (1000 * SCALE, 600 * SCALE), CLEAR)
    _camera(ImageDraw.Draw(image), x=20)
    return _trimmed(image)


def logo() -> Image.Image:
    """The camera followed by three film frames, trimmed."""
    image = Image.new("RGBA", (2000 * SCALE, 600 * SCALE), CLEAR)
    draw = ImageDraw.Draw(image)
    _camera(draw, x=20)
    _frames(draw, x=1000, count=3)
    return _trimmed(image)


def _save(image: Image.Image, name: str) -> None:
    image.save(OUT / name, format="PNG", optimize=True)


def main() -> None:
    """Write icon.png, icon@2x.png, logo.png and logo@2x.png."""
    OUT.mkdir(parents=True, exist_ok=True)
    camera = icon()
    for name, side in (("icon.png", 256), ("icon@2x.png", 512)):
        _save(_fit(camera, side, side), name)
    wide = logo()
    for name, height in (("logo.png", 128), ("logo@2x.png", 256)):
        # The logo is as wide as its height allows, in whole pixels, so that
        # the @2x image is exactly twice the 1x one.
        width = round(wide.width * 128 / wide.height) * height // 128
        _save(_fit(wide, width, height), name)
    for path in sorted(OUT.glob("*.png")):
        with Image.open(path) as image:
            print(f"{path.name}: {image.size[0]}x{image.size[1]} {image.mode}")


if __name__ == "__main__":
    main()
