"""Local images from the command line: generate/explain/cost --image PATH, and kierouter upload."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kierouter._images import decode_png, encode_png
from kierouter.sim import Emulator, in_thread

CLI = [sys.executable, "-m", "kierouter.cli"]


def png(path: Path, rgb: tuple[int, int, int] = (200, 30, 30), size: int = 16) -> Path:
    """Write a solid-colour PNG and return its path."""
    path.write_bytes(encode_png(size, size, bytes(rgb) * size * size))
    return path


def run(*args: str, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user would, with its data folder in ``home`` and no KIE key."""
    env = {**os.environ, "KIE_API_KEY": "", "KIEROUTER_HOME": str(home)}
    env.pop("KIE_BASE_URL", None)
    return subprocess.run(
        [*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """A running emulator (in a thread) that separate CLI runs can talk to."""
    with in_thread(time_scale=200) as emu:
        yield emu


def test_generate_edits_a_photo_on_disk_with_sim(tmp_path: Path) -> None:
    """The docs' `kierouter generate "make it night" --image ./photo.png --sim` works: the
    edit comes back in the photo's colour."""
    png(tmp_path / "photo.png")
    done = run(
        "generate", "make it night", "--image", "./photo.png", "--sim", "--json",
        cwd=tmp_path, home=tmp_path / "home",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["served_model"] and result["files"]
    image = decode_png(Path(result["files"][0]["path"]).read_bytes())
    count = image.width * image.height
    mean = [sum(image.pixels[c :: image.channels]) / count for c in range(3)]
    assert all(abs(m - want) < 12 for m, want in zip(mean, (200, 30, 30), strict=True))


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("missing.png", None, "no such file"),
        ("notes.png", b"a text file named .png", "it is text"),
    ],
)
def test_generate_with_a_bad_image_exits_2_naming_it(
    tmp_path: Path, name: str, content: bytes | None, words: str
) -> None:
    """A bad --image is a usage error (exit 2) naming the option's value; nothing runs."""
    if content is not None:
        (tmp_path / name).write_bytes(content)
    done = run("generate", "make it night", "--image", name, "--sim", cwd=tmp_path, home=tmp_path)
    assert done.returncode == 2
    assert f"images[0]: {name}" in done.stderr and words in done.stderr


def test_a_second_upload_run_reuses_the_cached_upload(emulator: Emulator, tmp_path: Path) -> None:
    """Two `kierouter upload` runs within KIE's retention: one upload, the same URL twice;
    --no-cache uploads again."""
    png(tmp_path / "photo.png")
    target = ("--sim-url", emulator.base_url)
    home = tmp_path / "home"
    first = run("upload", "photo.png", *target, cwd=tmp_path, home=home)
    assert first.returncode == 0, first.stderr
    url = first.stdout.strip()
    assert url.startswith(emulator.base_url + "/uploads/")
    second = run("upload", "photo.png", "--json", *target, cwd=tmp_path, home=home)
    (entry,) = json.loads(second.stdout)
    assert (entry["url"], entry["reused"], entry["file"]) == (url, True, "photo.png")
    assert emulator.stats()["uploads"] == 1
    assert (home / "uploads.sqlite").exists()
    third = run("upload", "photo.png", "--no-cache", *target, cwd=tmp_path, home=home)
    assert third.returncode == 0 and emulator.stats()["uploads"] == 2


def test_upload_checks_every_file_before_sending_any(emulator: Emulator, tmp_path: Path) -> None:
    """One good and one text file: exit 2 naming the bad one, nothing uploaded."""
    png(tmp_path / "photo.png")
    (tmp_path / "notes.png").write_text("not an image")
    target = ("--sim-url", emulator.base_url)
    done = run("upload", "photo.png", "notes.png", *target, cwd=tmp_path, home=tmp_path)
    assert done.returncode == 2 and "files[1]: notes.png" in done.stderr
    assert emulator.stats()["uploads"] == 0


def test_explain_and_cost_check_local_files_but_never_upload(tmp_path: Path) -> None:
    """explain and cost plan edits of a local file with no network at all (a key-less CLI with
    no emulator); a file too big for some models leaves them out; a missing file exits 2."""
    big = png(tmp_path / "big.png")
    with big.open("ab") as out:
        out.write(bytes(12 * 1024 * 1024))  # over 10 MB: only Nano Banana Pro and GPT-4o fit
    home = tmp_path / "home"
    explained = run(
        "explain", "make it night", "--image", "big.png", "--json", cwd=tmp_path, home=home
    )
    assert explained.returncode == 0, explained.stderr
    plan = json.loads(explained.stdout)
    assert {step["model"] for step in plan["plan"]} <= {"nano-banana-pro", "gpt4o-image"}
    reasons = {d["model"]: d["reason"] for d in plan["dropped"]}
    assert reasons["bytedance/seedream-v4-edit"].startswith("takes input images up to 10 MB")
    cost = run("cost", "--image", "big.png", "--count", "2", "--json", cwd=tmp_path, home=home)
    assert cost.returncode == 0, cost.stderr
    assert json.loads(cost.stdout)["steps"][0]["model"] in {"nano-banana-pro", "gpt4o-image"}
    missing = run("cost", "--image", "gone.png", cwd=tmp_path, home=home)
    assert missing.returncode == 2 and "gone.png: no such file" in missing.stderr
    assert not home.exists()  # nothing cached: nothing was uploaded
