"""Draw the home-screen icons static/icon-192.png and static/icon-512.png (the outputs are
committed; run again only to change them): 墨 in white on Moyan's teal, kept inside the middle
80 % so that a launcher's round or squircle mask never cuts it.

    .venv/bin/python static/src/make_icons.py   (needs fonts-noto-cjk: `make chromium` installs it)
"""
import os
import subprocess

from PIL import Image, ImageDraw, ImageFont

TEAL = "#0f766e"
STATIC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cjk_font_file():
    return subprocess.run(["fc-match", "-f", "%{file}", "Noto Serif CJK SC:bold"],
                          capture_output=True, text=True, check=True).stdout


def draw_icon(size, font_file):
    icon = Image.new("RGB", (size, size), TEAL)
    font = ImageFont.truetype(font_file, int(size * 0.56), index=2)  # index 2: the SC face of the .ttc
    ImageDraw.Draw(icon).text((size / 2, size / 2), "墨", font=font, fill="white", anchor="mm")
    return icon


if __name__ == "__main__":
    font_file = cjk_font_file()
    for size in (192, 512):
        draw_icon(size, font_file).save(os.path.join(STATIC, f"icon-{size}.png"), optimize=True)
