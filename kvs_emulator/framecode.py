"""Synthetic test-pattern frames that carry their own frame index.

Each frame has a band of large black/white cells across the top that encodes
the frame index (machine readable, survives H.264/JPEG compression and
scaling), a 7-segment style "SS.f" clock for humans, and a moving marker so
motion is obvious when the video plays.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

RGBArray = npt.NDArray[np.uint8]

DEFAULT_WIDTH = 320
DEFAULT_HEIGHT = 180
DEFAULT_FPS = 10
MIN_WIDTH = 64
MIN_HEIGHT = 36

DATA_BITS = 16
CRC_BITS = 4
_START = (1, 0)
_END = (0, 1)
CELLS = len(_START) + DATA_BITS + CRC_BITS + len(_END)
# The code band covers the top tenth of the frame; positions are proportional
# so the reader works on frames scaled to any size.
BAND_FRACTION = 0.1
# Cell averages inside this range are neither black nor white: treat the frame
# as unreadable instead of guessing.
_LOW = 80.0
_HIGH = 175.0

_BACKGROUND = np.array((24, 32, 48), dtype=np.uint8)
_DIGIT_ON = np.array((240, 240, 240), dtype=np.uint8)
_DIGIT_OFF = np.array((44, 54, 72), dtype=np.uint8)
_MARKER = np.array((255, 160, 0), dtype=np.uint8)
_PROGRESS = np.array((0, 170, 255), dtype=np.uint8)

# Segments a..g of a 7-segment digit.
_SEGMENTS: dict[int, str] = {
    0: "abcdef",
    1: "bc",
    2: "abdeg",
    3: "abcdg",
    4: "bcfg",
    5: "acdfg",
    6: "acdefg",
    7: "abc",
    8: "abcdefg",
    9: "abcdfg",
}


def _crc4(value: int) -> int:
    """CRC-4 (polynomial x^4 + x + 1) of a 16-bit value."""
    crc = 0
    for bit in range(DATA_BITS - 1, -1, -1):
        feedback = ((crc >> 3) & 1) ^ ((value >> bit) & 1)
        crc = (crc << 1) & 0xF
        if feedback:
            crc ^= 0x3
    return crc


def encode_bits(frame_index: int) -> list[int]:
    """Return the cell values (1 = white) that encode ``frame_index``."""
    value = frame_index & ((1 << DATA_BITS) - 1)
    data = [(value >> bit) & 1 for bit in range(DATA_BITS - 1, -1, -1)]
    crc = _crc4(value)
    check = [(crc >> bit) & 1 for bit in range(CRC_BITS - 1, -1, -1)]
    return [*_START, *data, *check, *_END]


def _band_height(height: int) -> int:
    return max(1, round(height * BAND_FRACTION))


Rect = tuple[int, int, int, int]  # x0, y0, x1, y1


def _fill(img: RGBArray, rect: Rect, color: RGBArray) -> None:
    x0, y0, x1, y1 = (max(0, v) for v in rect)
    img[y0:y1, x0:x1] = color


def _digit_glyphs(width: int, height: int, thick: int) -> tuple[RGBArray, ...]:
    """Pre-rendered 7-segment digits 0-9 (lit over dim segments)."""
    t = thick
    half = height // 2
    segments: dict[str, Rect] = {
        "a": (0, 0, width, t),
        "b": (width - t, 0, width, half + t // 2),
        "c": (width - t, half - t // 2, width, height),
        "d": (0, height - t, width, height),
        "e": (0, half - t // 2, t, height),
        "f": (0, 0, t, half + t // 2),
        "g": (0, half - t // 2, width, half - t // 2 + t),
    }
    glyphs: list[RGBArray] = []
    for digit in range(10):
        glyph: RGBArray = np.empty((height, width, 3), dtype=np.uint8)
        glyph[:] = _BACKGROUND
        # Dim segments first, so lit ones always win where they overlap.
        for rect in segments.values():
            _fill(glyph, rect, _DIGIT_OFF)
        for name in _SEGMENTS[digit]:
            _fill(glyph, segments[name], _DIGIT_ON)
        glyph.flags.writeable = False
        glyphs.append(glyph)
    return tuple(glyphs)


@dataclass(frozen=True)
class _Layout:
    """Everything about a frame that does not depend on the frame index."""

    background: RGBArray  # read-only template (background and decimal point)
    band: int  # rows of the code band
    cell_of_column: npt.NDArray[np.intp]  # code cell index per pixel column
    glyphs: tuple[RGBArray, ...]  # digits 0-9
    digit_origins: tuple[tuple[int, int], ...]  # (x, y) of tens, units, tenths
    marker_size: int
    marker_y: int


@functools.lru_cache(maxsize=8)
def _layout(width: int, height: int) -> _Layout:
    band = _band_height(height)
    cell_of_column = np.minimum(np.arange(width) * CELLS // width, CELLS - 1)

    marker_size = max(4, height // 12)
    marker_y = height - 3 - marker_size - 2
    # The clock fills most of the space between code band and marker; "SS.f"
    # is about 2.3 digit heights wide.
    top, bottom = band + 2, marker_y - 2
    digit_h = min(int((bottom - top) * 0.7), int(width / 2.4))
    digit_w = digit_h // 2
    thick = max(1, digit_h // 9)
    gap = max(1, thick * 2)
    x = max(0, (width - (3 * digit_w + 3 * gap + thick)) // 2)
    y = top + ((bottom - top) - digit_h) // 2
    origins = [(x, y), (x + digit_w + gap, y)]
    dot_x = x + 2 * (digit_w + gap)
    origins.append((dot_x + thick + gap, y))

    background: RGBArray = np.empty((height, width, 3), dtype=np.uint8)
    background[:] = _BACKGROUND
    _fill(
        background, (dot_x, y + digit_h - thick, dot_x + thick, y + digit_h), _DIGIT_ON
    )
    background.flags.writeable = False
    return _Layout(
        background=background,
        band=band,
        cell_of_column=cell_of_column,
        glyphs=_digit_glyphs(digit_w, digit_h, thick),
        digit_origins=tuple(origins),
        marker_size=marker_size,
        marker_y=marker_y,
    )


def draw_frame(
    frame_index: int, frames_per_cycle: int, width: int, height: int, fps: int
) -> RGBArray:
    """Render frame ``frame_index`` of a cycle as an RGB24 array (h, w, 3)."""
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        raise ValueError(f"frame {width}x{height} is smaller than the minimum")
    layout = _layout(width, height)
    img = layout.background.copy()

    cells = np.array(encode_bits(frame_index), dtype=np.uint8) * 255
    row = np.repeat(cells[layout.cell_of_column][:, np.newaxis], 3, axis=1)
    img[: layout.band] = row

    position = frame_index % frames_per_cycle
    seconds, tenth = divmod(position * 10 // fps, 10)
    digits = ((seconds // 10) % 10, seconds % 10, tenth)
    for (x, y), digit in zip(layout.digit_origins, digits, strict=True):
        glyph = layout.glyphs[digit]
        img[y : y + glyph.shape[0], x : x + glyph.shape[1]] = glyph

    # Bottom strip: progress through the cycle plus a bouncing marker that
    # crosses the frame once per second.
    progress_w = (position + 1) * width // frames_per_cycle
    _fill(img, (0, height - 3, progress_w, height), _PROGRESS)
    size = layout.marker_size
    phase = position % (2 * fps)
    travel = phase if phase < fps else 2 * fps - phase
    marker_x = travel * (width - size) // fps
    _fill(
        img,
        (marker_x, layout.marker_y, marker_x + size, layout.marker_y + size),
        _MARKER,
    )
    return img


def read_frame_index(rgb: npt.NDArray[Any]) -> int | None:
    """Decode the frame index from a (possibly compressed or scaled) frame.

    Returns None when the start/end markers, the checksum or the contrast of
    any cell do not look like a frame code.
    """
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        return None
    height, width = rgb.shape[0], rgb.shape[1]
    if width < CELLS or height < 2:
        return None
    band = height * BAND_FRACTION
    # Sample only the middle of each cell: edges blur under scaling and DCT.
    y0 = int(band * 0.25)
    y1 = max(y0 + 1, int(np.ceil(band * 0.75)))
    rows = rgb[y0:y1, :, :3].astype(np.float32).mean(axis=(0, 2))
    bits: list[int] = []
    for i in range(CELLS):
        x0 = int((i + 0.25) * width / CELLS)
        x1 = max(x0 + 1, int(np.ceil((i + 0.75) * width / CELLS)))
        level = float(rows[x0:x1].mean())
        if _LOW < level < _HIGH:
            return None
        bits.append(1 if level >= _HIGH else 0)
    start = tuple(bits[: len(_START)])
    end = tuple(bits[-len(_END) :])
    if start != _START or end != _END:
        return None
    payload = bits[len(_START) : len(_START) + DATA_BITS + CRC_BITS]
    value = 0
    for bit in payload[:DATA_BITS]:
        value = (value << 1) | bit
    crc = 0
    for bit in payload[DATA_BITS:]:
        crc = (crc << 1) | bit
    if crc != _crc4(value):
        return None
    return value
