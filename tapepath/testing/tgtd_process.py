"""The process side of a private tgtd: start, stop, signals, restart and ``tgtadm``.

:class:`TgtdProcess` starts ``tgtd -f -C N --iscsi portal=127.0.0.1:PORT`` on a free
control channel ``N`` and a free loopback port, waits until that very process answers
(it checks the control-channel lock is held by its own PID, so a concurrent tgtd of
another test can never be mistaken for it), runs ``tgtadm`` on that channel, and
pauses, kills, restarts and stops the daemon by the PID it started. Configuring
commands go through :meth:`TgtdProcess._config`, which records them so that
:meth:`TgtdProcess.restart` can replay them.

The targets, LUNs, portals, the virtual tape library and the CHAP accounts are built by
:class:`tapepath.testing.tgtd.TgtdInstance`, the subclass tests use; import it from
there. Secrets (CHAP passwords) never reach a log record or an exception message.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import structlog

from tapepath.testing.tgtd_support import (
    _SOCKET_DIR,
    HOST,
    TgtadmError,
    TgtdError,
    _channel_locked,
    _lock_holders,
    _redact,
    _which,
    find_free_port,
)

__all__ = ["TgtdProcess"]

# The same logger as tapepath.testing.tgtd: one area, one name.
log = structlog.get_logger("tapepath.testing.tgtd")

_P = TypeVar("_P", bound="TgtdProcess")


class TgtdProcess:
    """A tgtd process of this test session, listening on loopback only.

    The base of :class:`tapepath.testing.tgtd.TgtdInstance`: it owns the process, its
    control channel, its portals and the record of configuring commands; the
    subclass adds the commands that build targets, LUNs and libraries.

    Args:
        port: the first portal's port; a free one when None.
        control_port: the tgtd control channel (``-C``); a free one when None.
        workdir: where the log and the VTL images go; a fresh temporary directory
            (removed on :meth:`stop`) when None.
        nop_interval: seconds between the target's NOP-In pings (off when None).
        nop_count: unanswered pings before the target drops a connection.
        start_timeout: how long :meth:`start` waits for tgtd to answer.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        control_port: int | None = None,
        workdir: Path | str | None = None,
        nop_interval: int | None = None,
        nop_count: int | None = None,
        start_timeout: float = 10.0,
    ) -> None:
        tgtd, tgtadm = _which("tgtd"), _which("tgtadm")
        if tgtd is None or tgtadm is None:
            raise TgtdError("tgtd/tgtadm not installed (Debian package tgt)")
        self._tgtd_bin, self._tgtadm_bin = tgtd, tgtadm
        self._want_port, self._want_channel = port, control_port
        self._own_workdir = workdir is None
        self._workdir = Path(workdir) if workdir is not None else None
        self._nop = (nop_interval, nop_count)
        self._start_timeout = start_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._port = 0
        self._channel = 0
        self._portals: list[int] = []
        self._tids: list[int] = []
        self._replay: list[tuple[str, ...]] = []
        self._paused = False
        # The IQN of each target configure_vtl built, for url(); kept across stop().
        self._iqns: dict[int, str] = {}
        self._lock = threading.RLock()

    # -- lifecycle -----------------------------------------------------------------

    def __enter__(self: _P) -> _P:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def workdir(self) -> Path:
        """The directory of the log and the VTL images."""
        if self._workdir is None:
            raise TgtdError("not started")
        return self._workdir

    @property
    def pid(self) -> int | None:
        """The PID of the running tgtd, or None."""
        return None if self._proc is None else self._proc.pid

    @property
    def running(self) -> bool:
        """True while the tgtd process this instance started is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def host(self) -> str:
        """The address every portal listens on (loopback)."""
        return HOST

    @property
    def port(self) -> int:
        """The first portal's port."""
        return self._port

    @property
    def control_port(self) -> int:
        """The tgtd control channel (``tgtadm -C``)."""
        return self._channel

    @property
    def portals(self) -> tuple[int, ...]:
        """The ports of every portal, the first one first."""
        return tuple(self._portals)

    @property
    def log_path(self) -> Path:
        """tgtd's stdout and stderr."""
        return self.workdir / "tgtd.log"

    def start(self) -> None:
        """Start tgtd and wait until it answers on its own channel and portal.

        Raises:
            TgtdError: tgtd did not come up within ``start_timeout`` (after a few tries
                with other channels/ports when those were chosen here).
        """
        if self.running:
            raise TgtdError("already running")
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="tapepath-tgtd-"))
        self._workdir.mkdir(parents=True, exist_ok=True)
        tries = 1 if (self._want_port and self._want_channel) else 8
        last = ""
        for _ in range(tries):
            port = self._want_port or find_free_port()
            channel = self._want_channel or self._free_channel()
            try:
                self._launch(channel, port)
            except TgtdError as e:
                last = str(e)
                continue
            self._portals = [port]
            log.info("tgtd_started", pid=self.pid, control_port=channel, port=port)
            return
        raise TgtdError(f"tgtd did not start: {last}")

    @staticmethod
    def _free_channel() -> int:
        for _ in range(100):
            n = random.randint(20000, 32767)  # tgtd refuses -C above 32767
            if not _channel_locked(n):
                return n
        raise TgtdError("no free tgtd control channel")

    def _launch(self, channel: int, port: int) -> None:
        args = [self._tgtd_bin, "-f", "-C", str(channel), "--iscsi", f"portal={HOST}:{port}"]
        interval, count = self._nop
        if interval is not None:
            opts = f"nop_interval={interval}" + (f",nop_count={count}" if count else "")
            args += ["--iscsi", opts]
        with open(self.log_path, "ab") as out:
            proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        self._proc, self._channel, self._port = proc, channel, port
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self._proc = None
                raise TgtdError(f"tgtd exited with {proc.returncode}; see {self.log_path}")
            if self._owns_channel() and self._answers():
                listed = self._listed_portals()
                if listed == [port]:
                    return
                # The port was taken: tgtd falls back to its default portals. Not ours.
                self._hard_kill()
                raise TgtdError(f"tgtd could not listen on {HOST}:{port} (has {listed})")
            time.sleep(0.05)
        self._hard_kill()
        raise TgtdError(f"tgtd did not answer within {self._start_timeout} s")

    def _owns_channel(self) -> bool:
        try:
            inode = (_SOCKET_DIR / f"socket.{self._channel}.lock").stat().st_ino
        except FileNotFoundError:
            return False
        return self.pid in _lock_holders(inode)

    def _answers(self) -> bool:
        try:
            self.tgtadm("--op", "show", "--mode", "system", timeout=2.0)
        except (TgtadmError, subprocess.TimeoutExpired):
            return False
        return True

    def _listed_portals(self) -> list[int]:
        out = self.tgtadm("--op", "show", "--mode", "portal")
        ports: list[int] = []
        for line in out.splitlines():
            # "Portal: 127.0.0.1:3260,1"
            _, sep, rest = line.partition("Portal:")
            if sep:
                addr = rest.strip().split(",")[0]
                host, _, p = addr.rpartition(":")
                ports.append(int(p) if host == HOST else -int(p))
        return ports

    def stop(self) -> None:
        """Delete every target (``--force``), stop tgtd, and kill it by PID if needed.

        Safe to call twice. Removes the work directory when this instance created it.
        """
        with self._lock:
            proc = self._proc
            if proc is not None and proc.poll() is None:
                if self._paused:
                    self.resume()
                with contextlib.suppress(TgtdError, subprocess.TimeoutExpired):
                    for tid in list(self._tids):
                        self.tgtadm(*f"--op delete --mode target --tid {tid} --force".split())
                    self.tgtadm("--op", "delete", "--mode", "system", timeout=5.0)
                try:
                    proc.wait(timeout=3.0)
                except subprocess.TimeoutExpired:
                    self._hard_kill()
                log.info("tgtd_stopped", pid=proc.pid, control_port=self._channel)
            self._proc = None
            self._tids.clear()
            self._replay.clear()
            if self._own_workdir and self._workdir is not None:
                shutil.rmtree(self._workdir, ignore_errors=True)
                self._workdir = None

    def _hard_kill(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
            proc.wait(timeout=5.0)
        self._paused = False
        self._proc = None

    def pause(self) -> None:
        """Freeze tgtd with SIGSTOP: a black hole (no answers, no resets)."""
        self._stop_or_continue(signal.SIGSTOP, paused=True, event="tgtd_paused")

    def resume(self) -> None:
        """Let a paused tgtd run again (SIGCONT)."""
        self._stop_or_continue(signal.SIGCONT, paused=False, event="tgtd_resumed")

    def _stop_or_continue(self, sig: signal.Signals, *, paused: bool, event: str) -> None:
        with self._lock:
            self._require_running()
            assert self._proc is not None
            os.kill(self._proc.pid, sig)
            self._paused = paused
            log.info(event, pid=self._proc.pid)

    def kill(self) -> None:
        """Kill tgtd with SIGKILL (a crash): connections drop, the backing files stay."""
        with self._lock:
            self._require_running()
            pid = self.pid
            self._hard_kill()
            log.info("tgtd_killed", pid=pid)

    def restart(self) -> None:
        """Start tgtd again on the same channel, ports and backing files, after :meth:`kill`.

        The configuration made through this instance is replayed in order, so targets,
        LUNs, portals, accounts and parameters come back; the changer's cartridge
        positions return to their configured start.
        """
        with self._lock:
            if self.running:
                self._hard_kill()
            portals = self._portals or [self._port]
            self._launch(self._channel, portals[0])
            for args in self._replay:
                self.tgtadm(*args)
            self._portals = list(portals)
            log.info("tgtd_restarted", pid=self.pid, control_port=self._channel)

    def _require_running(self) -> None:
        if not self.running:
            raise TgtdError("tgtd is not running")

    # -- tgtadm --------------------------------------------------------------------

    def tgtadm(self, *args: str, timeout: float = 10.0) -> str:
        """Run ``tgtadm -C N --lld iscsi ARGS`` on this instance's channel.

        Args:
            *args: the tgtadm arguments after ``--lld iscsi``.
            timeout: seconds before the command is abandoned.

        Returns:
            tgtadm's standard output.

        Raises:
            TgtadmError: tgtadm failed; the message shows the command with secrets hidden.
        """
        cmd = [self._tgtadm_bin, "-C", str(self._channel), "--lld", "iscsi", *args]
        res = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
        out = res.stdout.decode("utf-8", "replace")
        if res.returncode != 0:
            shown = _redact(args)
            err = res.stderr.decode("utf-8", "replace").strip()
            log.debug("tgtadm_failed", args=shown, returncode=res.returncode, error=err)
            raise TgtadmError(
                f"tgtadm {' '.join(shown)} failed ({res.returncode}): {err}",
                returncode=res.returncode,
                output=out,
            )
        return out

    def _config(self, *args: str) -> str:
        """Run a configuring tgtadm command and remember it for :meth:`restart`."""
        with self._lock:
            out = self.tgtadm(*args)
            self._replay.append(tuple(args))
            return out
