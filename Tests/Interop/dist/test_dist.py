"""The self-contained binary `make dist` builds (release, the Swift runtime linked in): it runs,
and needs no shared library but glibc's, the GCC runtime's (libgcc_s, libstdc++), zlib and
libprotobuf-c: debian:bookworm-slim has all but the last, which the Containerfile installs
(Deploy/container/Containerfile). No Swift library: the image needs no Swift toolchain."""
import os
import pathlib
import re
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[3]
DIST = pathlib.Path(os.environ.get("JUNCTION_DIST", ROOT / "dist" / "junction"))
# glibc's parts, the dynamic loader and the kernel's vDSO; the GCC runtime (libstdc++ comes with
# Foundation's ICU); zlib (autolinked by Foundation); libprotobuf-c, the wire codec.
ALLOWED = re.compile(r"^(linux-vdso\.so\.1|/lib64/ld-linux-x86-64\.so\.2|ld-linux-[\w-]+\.so\.\d|"
                     r"lib(c|m|pthread|dl|rt|util|resolv|gcc_s|stdc\+\+|z)\.so\.\d+|libprotobuf-c\.so\.1)$")


def test_the_binary_exists():
    assert DIST.is_file(), f"{DIST} is missing: make dist builds it"
    assert os.access(DIST, os.X_OK)


def test_it_runs_and_knows_its_commands():
    version = subprocess.run([str(DIST), "--version"], capture_output=True, text=True, timeout=30)
    assert version.returncode == 0 and re.fullmatch(r"\d+\.\d+\.\d+\n", version.stdout), version
    help_text = subprocess.run([str(DIST), "scheduler", "--help"], capture_output=True, text=True, timeout=30)
    assert help_text.returncode == 0 and "--config" in help_text.stdout and "--id" in help_text.stdout, help_text


def test_it_needs_only_libc_and_libprotobuf_c():
    out = subprocess.run(["ldd", str(DIST)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    needed = [line.split()[0] for line in out.stdout.splitlines() if line.strip()]
    assert not [lib for lib in needed if not ALLOWED.match(lib)], out.stdout
    assert "libprotobuf-c.so.1" in needed and not any("swift" in lib.lower() for lib in needed), out.stdout
