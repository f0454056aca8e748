"""mediakit finds what a file really is, whatever its name, and refuses garbage clearly."""

import io

import pytest
from PIL import Image

from mediakit import AUDIO, IMAGE, VIDEO, MediaError, extract_frame, probe
from tests.sandbox import makemedia


@pytest.mark.parametrize("fmt, name", [("PNG", "a.png"), ("JPEG", "a.jpg"), ("WEBP", "a.webp")])
def test_images(tmp_path, fmt, name):
    path = makemedia.image(tmp_path / name, size=(321, 123), fmt=fmt)
    info = probe(path)
    assert (info.kind, info.format) == (IMAGE, fmt.lower())
    assert (info.width, info.height, info.bytes) == (321, 123, path.stat().st_size)
    assert info.duration is None


def test_a_name_says_nothing(tmp_path):
    # A JPEG named .png, a video named .jpg, a WAV named .mp4.
    jpeg = makemedia.image(tmp_path / "photo.png", fmt="JPEG")
    assert probe(jpeg).format == "jpeg"
    clip = makemedia.video(tmp_path / "clip.jpg", fmt="mp4")
    assert (probe(clip).kind, probe(clip).format) == (VIDEO, "mp4")
    wav = makemedia.sound(tmp_path / "song.mp4", fmt="wav")
    assert (probe(wav).kind, probe(wav).format) == (AUDIO, "wav")


def test_video_facts(tmp_path):
    info = probe(makemedia.video(tmp_path / "v.mp4", seconds=3, size="320x240", audio=True))
    assert (info.kind, info.format, info.video_codec, info.audio_codec) == (
        VIDEO,
        "mp4",
        "h264",
        "aac",
    )
    assert (info.width, info.height) == (320, 240)
    assert info.duration == pytest.approx(3, abs=0.1)
    assert info.has_audio


def test_mov_is_told_from_mp4(tmp_path):
    info = probe(makemedia.video(tmp_path / "v.mov", seconds=2, fmt="mov"))
    assert (info.kind, info.format) == (VIDEO, "mov")
    assert info.duration == pytest.approx(2, abs=0.1)


@pytest.mark.parametrize("name, fmt, container", [("a.mp3", "mp3", "mp3"), ("a.wav", "wav", "wav")])
def test_audio(tmp_path, name, fmt, container):
    info = probe(makemedia.sound(tmp_path / name, seconds=4, fmt=fmt))
    assert (info.kind, info.format, info.video_codec) == (AUDIO, container, None)
    assert info.duration == pytest.approx(4, abs=0.1)
    assert info.width is None


def test_a_text_file_named_png_is_refused(tmp_path):
    path = tmp_path / "cat.png"
    path.write_text("I am not a picture, I am a text file.\n" * 5)
    with pytest.raises(MediaError, match="cat.png: not an image, video or audio"):
        probe(path)


def test_a_truncated_mp4_is_refused(tmp_path):
    whole = makemedia.video(tmp_path / "whole.mp4", seconds=3)
    data = whole.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(MediaError, match="cut.mp4: .*(truncated|recognise)"):
        probe(cut)
    assert probe(whole).kind == VIDEO


def test_a_truncated_png_and_an_empty_file_are_refused(tmp_path):
    whole = makemedia.image(tmp_path / "whole.png", size=(400, 300))
    cut = tmp_path / "cut.png"
    cut.write_bytes(whole.read_bytes()[:300])
    with pytest.raises(MediaError, match="damaged or truncated"):
        probe(cut)
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    with pytest.raises(MediaError, match="empty"):
        probe(empty)
    with pytest.raises(MediaError, match="cannot be read"):
        probe(tmp_path / "missing.mp4")


def test_extract_frame_first_and_last(tmp_path):
    first = makemedia.image(tmp_path / "first.png", size=(320, 240), colors=("#ff0000", "#00ff00"))
    last = makemedia.image(tmp_path / "last.png", size=(320, 240), colors=("#0000ff", "#ffffff"))
    clip = tmp_path / "clip.mp4"
    makemedia.ffmpeg(
        "-loop", "1", "-t", "1", "-i", str(first), "-loop", "1", "-t", "1", "-i", str(last),
        "-filter_complex", "[0][1]concat=n=2:v=1[v]", "-map", "[v]", "-r", "5",
        "-c:v", "libx264", "-pix_fmt", "yuv420p", str(clip),
    )  # fmt: skip
    for at, expected in (("first", (255, 0, 0)), ("last", (0, 0, 255))):
        frame = Image.open(io.BytesIO(extract_frame(clip, at=at))).convert("RGB")
        assert frame.size == (320, 240)
        pixel = frame.getpixel((10, 10))
        assert all(abs(a - b) < 30 for a, b in zip(pixel, expected, strict=True)), (at, pixel)
    with pytest.raises(ValueError):
        extract_frame(clip, at="middle")
    with pytest.raises(MediaError):
        extract_frame(first.with_name("nothing.mp4"))
