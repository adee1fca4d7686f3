"""Harness for running Bacula's own mtx-changer script against tapepath-mtx.

:func:`bacula_changer` downloads the Debian package ``bacula-sd`` with ``apt-get
download`` into a cache directory (``.cache/bacula`` of the checkout, or
``$TAPEPATH_BACULA_CACHE``), unpacks it with ``dpkg-deb -x`` (nothing is installed) and
makes a working copy of ``etc/bacula/scripts/mtx-changer`` in which the three paths the
script hard-codes are rewritten: ``MTX=/usr/sbin/mtx`` points at tapepath-mtx, the
configuration file ``/etc/bacula/scripts/mtx-changer.conf`` at a copy of the packaged
one, and its work directory ``/var/lib/bacula`` at a temporary directory.

After a load the script polls ``mt -f DEVICE status`` until it prints the ready word
(``ONLINE`` with mt-st). The drives here are iSCSI LUNs without a Linux tape node, so
the harness puts a stand-in ``mt`` first on PATH: it answers ``--version`` as mt-st
does and ``status`` with ``ONLINE``; the script's wait returns at once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from attrs import frozen

__all__ = ["BaculaChanger", "HarnessUnavailable", "bacula_changer", "tapepath_mtx"]

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("TAPEPATH_BACULA_CACHE", REPO / ".cache" / "bacula"))
PACKAGE = "bacula-sd"
SCRIPT = Path("etc/bacula/scripts/mtx-changer")
CONF = Path("etc/bacula/scripts/mtx-changer.conf")

_MT_STANDIN = """#!/bin/sh
# stand-in for mt-st's mt: the drives are iSCSI LUNs without a Linux tape node
case "$1" in
  --version) echo "mt-st v. 1.7"; exit 0 ;;
esac
echo "SCSI 2 tape drive:"
echo "File number=0, block number=0, partition=0."
echo "General status bits on (41010000):"
echo " BOT ONLINE IM_REP_EN"
"""


class HarnessUnavailable(Exception):
    """The package cannot be had here (no apt, no network): the test cannot run."""


def _run(cmd: list[str], cwd: Path | None = None, timeout: float = 300) -> None:
    try:
        res = subprocess.run(
            cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HarnessUnavailable(f"{cmd[0]}: {exc}") from exc
    if res.returncode != 0:
        raise HarnessUnavailable(f"{' '.join(cmd)} failed: {res.stderr.strip()[-400:]}")


def unpacked_package(cache: Path = CACHE) -> Path:
    """The unpacked bacula-sd package (downloaded and unpacked on first use)."""
    cache.mkdir(parents=True, exist_ok=True)
    root = cache / "root"
    if (root / SCRIPT).is_file() and (root / CONF).is_file():
        return root
    debs = sorted(cache.glob(f"{PACKAGE}_*.deb"))
    if not debs:
        _run(["apt-get", "download", PACKAGE], cwd=cache)
        debs = sorted(cache.glob(f"{PACKAGE}_*.deb"))
    if not debs:
        raise HarnessUnavailable(f"apt-get download {PACKAGE} left no .deb in {cache}")
    tmp = Path(tempfile.mkdtemp(prefix="unpack-", dir=cache))
    try:
        _run(["dpkg-deb", "-x", str(debs[-1]), str(tmp)])
        shutil.rmtree(root, ignore_errors=True)
        tmp.rename(root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def tapepath_mtx(workdir: Path) -> Path:
    """The tapepath-mtx executable: the venv's console script, else a wrapper."""
    script = Path(sys.executable).parent / "tapepath-mtx"
    if script.is_file():
        return script
    wrapper = workdir / "tapepath-mtx"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m tapepath.mtx "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


@frozen
class BaculaChanger:
    """A rewritten copy of Bacula's mtx-changer, ready to run.

    Attributes:
        script: the rewritten script.
        conf: its configuration file (a copy of the packaged one).
        env: the environment to run it with (the ``mt`` stand-in first on PATH).
    """

    script: Path
    conf: Path
    env: dict[str, str]

    def __call__(
        self, ctl: str, command: str, slot: str = "0", device: str = "/dev/nst0", drive: str = "0"
    ) -> subprocess.CompletedProcess[str]:
        """Run ``mtx-changer CTL COMMAND SLOT DEVICE DRIVE`` as Bacula's storage daemon does."""
        return subprocess.run(
            ["/bin/sh", str(self.script), ctl, command, slot, device, drive],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=120,
            check=False,
        )


def _replace(text: str, old: str, new: str) -> str:
    if old not in text:
        raise HarnessUnavailable(f"mtx-changer no longer contains {old!r}: update the harness")
    return text.replace(old, new)


def bacula_changer(workdir: Path, cache: Path = CACHE) -> BaculaChanger:
    """Prepare the rewritten script in ``workdir``.

    Raises:
        HarnessUnavailable: the package could not be downloaded or unpacked.
    """
    root = unpacked_package(cache)
    var = workdir / "var-lib-bacula"
    var.mkdir(parents=True, exist_ok=True)
    conf = workdir / "mtx-changer.conf"
    shutil.copyfile(root / CONF, conf)
    text = (root / SCRIPT).read_text()
    text = _replace(text, "MTX=/usr/sbin/mtx", f"MTX={tapepath_mtx(workdir)}")
    text = _replace(text, "/etc/bacula/scripts/mtx-changer.conf", str(conf))
    text = _replace(text, "/var/lib/bacula", str(var))
    script = workdir / "mtx-changer"
    script.write_text(text)
    script.chmod(0o755)
    bindir = workdir / "bin"
    bindir.mkdir(exist_ok=True)
    mt = bindir / "mt"
    mt.write_text(_MT_STANDIN)
    mt.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAPEPATH_LOG")}
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    return BaculaChanger(script, conf, env)
