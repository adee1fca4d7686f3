"""The real-kernel harness: a Debian kernel in QEMU, logged in to a private tgtd twice.

Everything comes from Debian packages on this machine or the archive:

1. :func:`prepare_kernel` finds the current ``linux-image-*-amd64`` package with
   apt-cache, downloads it with ``apt-get download`` into a cache directory, unpacks it
   with ``dpkg-deb -x`` and runs ``depmod`` (done once; later runs reuse the cache).
2. :func:`build_initramfs` packs busybox-static, the needed modules in dependency order
   (from modules.dep) and an init script into a newc cpio archive.
3. :class:`VirtualMachine` boots QEMU (TCG, 1 GiB, one CPU) with this machine's root as a
   read-only 9p share, user networking (the guest's 10.0.2.2:PORT is this machine's
   127.0.0.1:PORT) and a virtio-serial port on a host UNIX socket. The init script mounts
   the share, gives iscsid writable directories, and runs :mod:`tests.vm.guest_agent`
   with this machine's Python in a chroot of the share. The agent answers JSON requests
   one by one, so a host test can act on tgtd between two guest steps.
4. :func:`boot_library` starts a :class:`~tapepath.testing.tgtd.TgtdInstance` with a
   VTL and two portals, boots the VM and logs in to both portals (node records made by
   hand, a low replacement timeout), so every logical unit has two /dev/sgN nodes.

Tests and ``benchmarks/bench_sg.py`` both use this module.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from attrs import frozen

from tapepath.testing.tgtd import TgtdInstance, VtlLayout

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("TAPEPATH_VM_CACHE", REPO / ".cache" / "vm"))
GUEST_HOST_ADDR = "10.0.2.2"
AGENT_PORT_NAME = "tapepath.agent"
GUEST_IQN = "iqn.2026-11.org.tapepath:guest"

# Loaded before the host's files are visible, then the SCSI stack (reference/linux-vm.md).
BOOT_MODULES = (
    "virtio", "virtio_ring", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci",
    "netfs", "fscache", "9pnet", "9pnet_virtio", "9p", "failover", "net_failover",
    "virtio_net", "virtio_console",
)  # fmt: skip
SCSI_MODULES = (
    "crc32c_generic", "scsi_common", "scsi_mod", "sg", "st", "ch",
    "scsi_transport_iscsi", "libiscsi", "libiscsi_tcp", "iscsi_tcp",
)  # fmt: skip


class HarnessUnavailable(RuntimeError):
    """The harness cannot work on this machine (a tool, a package or the archive is missing)."""


class GuestError(RuntimeError):
    """The guest agent reported an exception; the message holds its traceback."""


@frozen
class Kernel:
    """An unpacked Debian kernel package.

    Attributes:
        version: the kernel release (``6.1.0-56-amd64``).
        root: the unpacked tree (boot/, lib/modules/VERSION/).
        vmlinuz: the kernel image.
    """

    version: str
    root: Path
    vmlinuz: Path

    @property
    def moddir(self) -> Path:
        """lib/modules/VERSION of the tree."""
        return self.root / "lib" / "modules" / self.version


def _run(cmd: Sequence[str], *, cwd: Path | None = None, timeout: float = 300) -> str:
    try:
        res = subprocess.run(
            list(cmd), cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as e:
        raise HarnessUnavailable(f"{cmd[0]} is not installed") from e
    if res.returncode != 0:
        raise HarnessUnavailable(f"{' '.join(cmd)} failed: {res.stderr.strip()[-500:]}")
    return res.stdout


def current_kernel_package() -> str:
    """The name of the kernel package linux-image-amd64 depends on in the archive."""
    out = _run(["apt-cache", "depends", "linux-image-amd64"], timeout=60)
    for line in out.splitlines():
        _, sep, name = line.strip().partition("Depends:")
        name = name.strip()
        if sep and name.startswith("linux-image-") and name.endswith("-amd64"):
            return name
    raise HarnessUnavailable("apt-cache knows no linux-image-*-amd64 (run apt-get update)")


def _unpack(cache: Path, package: str, version: str, root: Path) -> None:
    debs = sorted(cache.glob(f"{package}_*.deb"))
    if not debs:
        _run(["apt-get", "download", package], cwd=cache)
        debs = sorted(cache.glob(f"{package}_*.deb"))
    if not debs:
        raise HarnessUnavailable(f"apt-get download {package} left no .deb")
    tmp = Path(tempfile.mkdtemp(prefix="kroot-", dir=cache))
    try:
        _run(["dpkg-deb", "-x", str(debs[-1]), str(tmp)])
        _run(["depmod", "-b", str(tmp), version])
        shutil.rmtree(root, ignore_errors=True)
        tmp.rename(root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def prepare_kernel(cache: Path = CACHE, package: str | None = None) -> Kernel:
    """Download, unpack and depmod the current Debian kernel once; reuse it afterwards."""
    cache.mkdir(parents=True, exist_ok=True)
    package = package or current_kernel_package()
    version = package.removeprefix("linux-image-")
    root = cache / package
    stamp = root / ".ready"
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test sessions may prepare at once
        if not stamp.exists():
            _unpack(cache, package, version, root)
            stamp.touch()
    vmlinuz = root / "boot" / f"vmlinuz-{version}"
    if not vmlinuz.exists():
        raise HarnessUnavailable(f"{vmlinuz} missing in the kernel package")
    return Kernel(version=version, root=root, vmlinuz=vmlinuz)


def module_order(kernel: Kernel, names: Sequence[str]) -> list[str]:
    """Module paths (relative to the module dir) to insmod for ``names``, dependencies first."""
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in (kernel.moddir / "modules.dep").read_text().splitlines():
        mod, _, rest = line.partition(":")
        deps[mod] = rest.split()
        base = Path(mod).name.split(".ko")[0]
        by_name[base.replace("-", "_")] = mod
    order: list[str] = []

    def visit(mod: str) -> None:
        if mod in order:
            return
        for dep in reversed(deps.get(mod, [])):
            visit(dep)
        order.append(mod)

    for name in names:
        if name not in by_name:
            raise HarnessUnavailable(f"module {name} is not in {kernel.version}")
        visit(by_name[name])
    return order


INIT_SCRIPT = r"""#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /host /tmp /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
. /etc/vm.env
for m in $(cat /etc/modules.order); do
  insmod /lib/modules/$m || echo "vm-init: insmod $m failed"
done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose host /host \
  || echo "vm-init: 9p failed"
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
[ -f /host/etc/iscsi/iscsid.conf ] && cp /host/etc/iscsi/iscsid.conf /iscsid.conf
# The writable tmpfs places below would hide a checkout that lives under one of them
# (CI clones into /tmp): keep a bind mount of it and put it back on top.
case "$REPO" in
  /tmp/*|/run/*|/var/lib/*|/etc/iscsi/*) mkdir -p /keep; mount --bind "/host$REPO" /keep ;;
esac
for d in tmp run var/lib etc/iscsi; do mount -t tmpfs tmpfs /host/$d; done
if [ -d /keep ]; then mkdir -p "/host$REPO"; mount --bind /keep "/host$REPO"; fi
mkdir -p /host/run/lock/iscsi /host/var/lib/iscsi /host/etc/iscsi
[ -f /iscsid.conf ] && cp /iscsid.conf /host/etc/iscsi/iscsid.conf
echo "InitiatorName=$GUEST_IQN" > /host/etc/iscsi/initiatorname.iscsi
for d in dev proc sys; do mount --bind /$d /host/$d; done
AGENT=
for p in /sys/class/virtio-ports/*; do
  [ "$(cat $p/name 2>/dev/null)" = "$AGENT_NAME" ] && AGENT=/dev/$(basename $p)
done
echo "vm-init: agent port $AGENT"
exec chroot /host /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp \
  PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 "$PYTHON" -c \
  "import os, sys; os.chdir(sys.argv[1]); sys.path.insert(0, sys.argv[1]); \
from tests.vm.guest_agent import main; sys.exit(main(sys.argv[2:]))" "$REPO" "$AGENT"
"""


def build_initramfs(kernel: Kernel, out: Path, *, python: str = sys.executable) -> Path:
    """Pack busybox, the boot and SCSI modules, and the init script into ``out`` (newc cpio)."""
    busybox = shutil.which("busybox")
    if busybox is None:
        raise HarnessUnavailable("busybox-static is not installed")
    tree = Path(tempfile.mkdtemp(prefix="initramfs-", dir=out.parent))
    try:
        (tree / "bin").mkdir()
        (tree / "etc").mkdir()
        shutil.copy2(busybox, tree / "bin" / "busybox")
        order = module_order(kernel, (*BOOT_MODULES, *SCSI_MODULES))
        for mod in order:
            dest = tree / "lib" / "modules" / mod
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(kernel.moddir / mod, dest)
        (tree / "etc" / "modules.order").write_text("\n".join(order) + "\n")
        env = {"GUEST_IQN": GUEST_IQN, "AGENT_NAME": AGENT_PORT_NAME, "PYTHON": python,
               "REPO": str(REPO)}  # fmt: skip
        (tree / "etc" / "vm.env").write_text("".join(f"{k}='{v}'\n" for k, v in env.items()))
        init = tree / "init"
        init.write_text(INIT_SCRIPT)
        init.chmod(0o755)
        names = sorted(str(p.relative_to(tree)) for p in tree.rglob("*"))
        with open(out, "wb") as f:
            subprocess.run(
                ["cpio", "-o", "-H", "newc", "--quiet"],
                cwd=tree,
                input="\n".join(names).encode(),
                stdout=f,
                check=True,
                timeout=60,
            )
    finally:
        shutil.rmtree(tree, ignore_errors=True)
    return out


class AgentConnection:
    """Newline-delimited JSON over the VM's virtio-serial port (a host UNIX socket)."""

    def __init__(self, path: Path, *, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not path.exists():
            if time.monotonic() > deadline:
                raise HarnessUnavailable(f"QEMU did not create {path}")
            time.sleep(0.05)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.connect(str(path))
        self._buf = b""
        self._next_id = 0

    def read_message(self, timeout: float) -> dict[str, Any]:
        """The next JSON line from the guest (TimeoutError after ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from the guest agent")
            self._sock.settimeout(left)
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                raise GuestError("the guest agent closed its port")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        msg: dict[str, Any] = json.loads(line)
        return msg

    def request(self, op: str, timeout: float = 120.0, **args: Any) -> Any:
        """Send one request and return its result (GuestError when the guest raised)."""
        self._next_id += 1
        ident = self._next_id
        payload = json.dumps({"id": ident, "op": op, "args": args}) + "\n"
        self._sock.sendall(payload.encode())
        while True:
            msg = self.read_message(timeout)
            if msg.get("id") != ident:
                continue
            if not msg.get("ok"):
                raise GuestError(f"{op} failed in the guest:\n{msg.get('error')}")
            return msg.get("result")

    def close(self) -> None:
        """Close the socket."""
        with contextlib.suppress(OSError):
            self._sock.close()


class VirtualMachine:
    """One QEMU guest running the agent. Use :meth:`boot`, then :meth:`call`, then :meth:`stop`.

    Args:
        kernel: the unpacked kernel.
        workdir: where the initramfs, the console log and the agent socket go.
        accel: QEMU accelerator (``tcg`` by default; ``TAPEPATH_VM_ACCEL`` overrides).
        memory_mb: guest memory.
    """

    def __init__(
        self, kernel: Kernel, workdir: Path, *, accel: str | None = None, memory_mb: int = 1024
    ) -> None:
        self.kernel = kernel
        self.workdir = workdir
        self.accel = accel or os.environ.get("TAPEPATH_VM_ACCEL", "tcg")
        self.memory_mb = memory_mb
        self.console_log = workdir / "console.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._agent: AgentConnection | None = None
        self.hello: dict[str, Any] = {}
        self.boot_seconds = 0.0

    def command(self, initrd: Path, sock: Path) -> list[str]:
        """The qemu-system-x86_64 command line."""
        share = "local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap"
        return [
            "qemu-system-x86_64", "-accel", self.accel, "-m", str(self.memory_mb), "-smp", "1",
            "-nodefaults", "-no-reboot", "-display", "none", "-monitor", "none",
            "-kernel", str(self.kernel.vmlinuz), "-initrd", str(initrd),
            "-append", "console=ttyS0 panic=-1 quiet loglevel=4",
            "-serial", f"file:{self.console_log}",
            "-virtfs", share,
            "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0",
            "-device", "virtio-serial-pci",
            "-chardev", f"socket,id=agent,path={sock},server=on,wait=off",
            "-device", f"virtserialport,chardev=agent,name={AGENT_PORT_NAME}",
        ]  # fmt: skip

    def boot(self, timeout: float = 120.0) -> None:
        """Start QEMU and wait for the agent's hello."""
        if shutil.which("qemu-system-x86_64") is None:
            raise HarnessUnavailable("qemu-system-x86_64 is not installed")
        started = time.monotonic()
        initrd = build_initramfs(self.kernel, self.workdir / "initramfs.cpio")
        sock = self.workdir / "agent.sock"
        with open(self.workdir / "qemu.log", "wb") as log:
            self._proc = subprocess.Popen(
                self.command(initrd, sock), stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        try:
            self._agent = AgentConnection(sock, timeout=30)
            deadline = time.monotonic() + timeout
            while True:
                if self._proc.poll() is not None:
                    raise HarnessUnavailable(f"QEMU exited early:\n{self.console_tail()}")
                try:
                    msg = self._agent.read_message(min(1.0, deadline - time.monotonic()))
                except TimeoutError:
                    if time.monotonic() >= deadline:
                        raise HarnessUnavailable(
                            f"the guest did not come up in {timeout} s:\n{self.console_tail()}"
                        ) from None
                    continue
                if "hello" in msg:
                    self.hello = msg["hello"]
                    break
        except BaseException:
            self.stop()
            raise
        self.boot_seconds = time.monotonic() - started

    def console_tail(self, n: int = 40) -> str:
        """The last lines of the serial console."""
        try:
            lines = self.console_log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no console log)"
        return "\n".join(lines[-n:])

    def call(self, function: str, *, call_timeout: float = 180.0, **kwargs: Any) -> Any:
        """Run ``tests.vm.guest_ops.<function>(**kwargs)`` in the guest and return its result.

        ``call_timeout`` bounds the wait for the answer (``kwargs`` go to the function).
        """
        if self._agent is None:
            raise GuestError("the VM is not running")
        return self._agent.request("call", timeout=call_timeout, function=function, kwargs=kwargs)

    def sh(self, *argv: str, timeout: float = 60.0) -> dict[str, Any]:
        """Run a command in the guest: ``{"rc", "stdout", "stderr"}``."""
        if self._agent is None:
            raise GuestError("the VM is not running")
        res: dict[str, Any] = self._agent.request("sh", timeout=timeout, argv=list(argv))
        return res

    def stop(self) -> None:
        """Stop QEMU (by its PID) and close the agent socket."""
        if self._agent is not None:
            self._agent.close()
            self._agent = None
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self._proc = None


@frozen
class GuestLibrary:
    """A booted guest logged in to a tgtd VTL through two portals.

    Attributes:
        vm: the guest.
        tgt: the tgtd instance on this machine.
        vtl: the library layout.
        portals: the two portal ports, in login order.
        sessions: the guest's iSCSI session number for each portal (same order).
        target_sids: portal index -> tgtd's session id of that portal's session (tests
            that make the guest log in again update it; see :meth:`relogged`).
    """

    vm: VirtualMachine
    tgt: TgtdInstance
    vtl: VtlLayout
    portals: tuple[int, int]
    sessions: tuple[int, int]
    target_sids: dict[int, int]

    def relogged(self, index: int) -> int:
        """Record the tgtd session id of portal ``index`` after a new login; return it."""
        others = {sid for i, sid in self.target_sids.items() if i != index}
        (sid,) = [c.sid for c in self.tgt.connections(self.vtl.tid) if c.sid not in others]
        self.target_sids[index] = sid
        return sid


@contextlib.contextmanager
def boot_library(
    *,
    replacement_timeout: int = 5,
    drives: int = 2,
    disk_mb: int | None = None,
    workdir: Path | None = None,
) -> Iterator[GuestLibrary]:
    """tgtd with a VTL on two portals, and a guest logged in to both.

    Args:
        replacement_timeout: the guest's node.session.timeo.replacement_timeout.
        drives: tape drives in the library.
        disk_mb: add a sparse disk LUN of this size.
        workdir: scratch directory (a temporary one when None).

    Yields:
        The running :class:`GuestLibrary`; everything is stopped on exit.
    """
    kernel = prepare_kernel()
    scratch = Path(tempfile.mkdtemp(prefix="tapepath-vm-")) if workdir is None else workdir
    tgt = TgtdInstance(workdir=scratch / "tgtd")
    vm = VirtualMachine(kernel, scratch)
    try:
        tgt.start()
        vtl = tgt.configure_vtl(drives=drives, slots=8, disk_mb=disk_mb)
        second = tgt.add_portal()
        portals = (tgt.port, second)
        vm.boot()
        vm.call("start_iscsid")
        luns = len(vtl.luns) + 1  # LUN 0, the target's controller, gets nodes too
        sessions: list[int] = []
        sids: dict[int, int] = {}
        for i, port in enumerate(portals):
            (sid,) = vm.call(
                "login",
                iqn=vtl.iqn,
                host=GUEST_HOST_ADDR,
                ports=[port],
                replacement_timeout=replacement_timeout,
                expect_nodes=(i + 1) * luns,
            )
            sessions.append(sid)
            known = set(sids.values())
            (sids[i],) = [c.sid for c in tgt.connections(vtl.tid) if c.sid not in known]
        yield GuestLibrary(
            vm=vm,
            tgt=tgt,
            vtl=vtl,
            portals=portals,
            sessions=(sessions[0], sessions[1]),
            target_sids=sids,
        )
    finally:
        vm.stop()
        tgt.stop()
        if workdir is None:
            shutil.rmtree(scratch, ignore_errors=True)
