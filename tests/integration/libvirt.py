# SPDX-License-Identifier: GPL-2.0-or-later
"""A private libvirtd per test "host", for the guest tests.

Each Libvirtd runs in a host's network namespace (netlab.Net) and in a
mount namespace of its own in which a fresh tmpfs covers /run and
temporary directories are bound over /etc/libvirt, /var/lib/libvirt,
/var/cache/libvirt and /var/log/libvirt: two instances share no state (no
socket, pid file, domain definitions, capabilities cache or logs), and the
machine's own libvirt files are never touched.  The mount namespace is a
copy of the test's, made when the daemon starts, so vfsd mounts made
before are visible inside; `binds` also puts such a mount at a path of
its own inside, the same on every host (libvirt migrates a disk by path).

The test talks to an instance with virsh over its UNIX socket (no TCP
listener), at the socket's path as seen from the test:

    lv = Libvirtd(net.hosts[0], binds={"/var/lib/libvirt/vfsd": vfsd.mnt}).start()
    lv.virsh("pool-list", "--all")
    lv.virsh("define", xml_file)
    lv.host_path("/run/libvirt/qemu/vm.console")   # the same file, from here

stop() (also run from the harness's cleanup list, on failure too)
destroys the domains, stops libvirtd and kills whatever is left in its
mount namespace (the QEMUs it started: nothing else can be in there),
after which the namespace and its mounts go away."""
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from xml.sax.saxutils import escape, quoteattr

import harness
import qemu

LIBVIRTD = shutil.which("libvirtd") or "/usr/sbin/libvirtd"
VIRSH = shutil.which("virsh") or "/usr/bin/virsh"
QEMU = shutil.which("qemu-system-x86_64")

# inside the namespace -> the work directory's subdirectory bound there
STATE_DIRS = (
    ("/etc/libvirt", "etc"),
    ("/var/lib/libvirt", "lib"),
    ("/var/cache/libvirt", "cache"),
    ("/var/log/libvirt", "log"),
    ("/run/libvirt", "run"),
)


def libvirt_unavailable():
    """None if a private libvirtd can run here, else why not."""
    if os.geteuid() != 0:
        return "needs root (libvirtd, namespaces)"
    for path, pkg in ((LIBVIRTD, "libvirt-daemon-system"), (VIRSH, "libvirt-clients")):
        if not os.access(path, os.X_OK):
            return "%s is not installed (%s; scripts/deps.sh --test)" % (path, pkg)
    if not QEMU:
        return "qemu-system-x86_64 is not installed (scripts/deps.sh --test)"
    for tool in ("unshare", "nsenter", "mount"):
        if not shutil.which(tool):
            return "%s is not installed (util-linux)" % tool
    return None


def domain_type():
    """'kvm' where KVM runs a guest here (qemu.accel(): /dev/kvm may be
    there and run nothing), else 'qemu' (TCG)."""
    return "kvm" if qemu.accel() == "kvm" else "qemu"


def domain_xml(name, disk, memory_mib=128, kernel=None, initrd=None, cmdline=None,
               serial=None, uid=None, disk_io="threads", error_policy=None):
    """A domain with one virtio disk (qcow2, cache='none') at `disk`.

    Without kernel it sits in the firmware (nothing to boot).  kernel,
    initrd and cmdline boot that kernel directly; serial is the path of a
    UNIX socket QEMU listens on for the first serial port (all paths as
    seen inside the libvirtd's mount namespace: a path under /run/libvirt
    is a different file on each host, see Libvirtd.host_path).  libvirt
    9.0 binds that socket itself and hands QEMU the descriptor (-chardev
    socket,fd=N), and it goes when the domain leaves the host; a socket
    bound to a path is reached through its file, so the test connects to
    host_path(serial) from outside both namespaces.
    error_policy: QEMU's answer to a disk's I/O errors, reads and writes
    ('stop' pauses the guest, 'report' hands the error to it; None: the
    default)."""
    os_extra = ""
    if kernel:
        os_extra += "    <kernel>%s</kernel>\n" % escape(kernel)
    if initrd:
        os_extra += "    <initrd>%s</initrd>\n" % escape(initrd)
    if cmdline:
        os_extra += "    <cmdline>%s</cmdline>\n" % escape(cmdline)
    serial_xml = ""
    if serial:
        serial_xml = ("    <serial type='unix'>\n"
                      "      <source mode='bind' path=%s/>\n"
                      "      <target port='0'/>\n"
                      "    </serial>\n" % quoteattr(serial))
    return """\
<domain type='%(type)s'>
  <name>%(name)s</name>
  <uuid>%(uuid)s</uuid>
  <memory unit='MiB'>%(mem)d</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
%(os_extra)s  </os>
  <features>
    <acpi/>
    <apic/>
  </features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>%(qemu)s</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none' io=%(io)s%(policy)s/>
      <source file=%(disk)s/>
      <target dev='vda' bus='virtio'/>
    </disk>
%(serial)s    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>
""" % {"type": domain_type(), "name": escape(name), "uuid": uid or uuid.uuid4(),
       "mem": memory_mib, "os_extra": os_extra, "qemu": escape(QEMU),
       "io": quoteattr(disk_io),
       "policy": (" error_policy=%s rerror_policy=%s" % (quoteattr(error_policy),
                                                         quoteattr(error_policy))
                  if error_policy else ""), "disk": quoteattr(disk), "serial": serial_xml}


LIBVIRTD_CONF = """\
# virsh reaches this instance through its UNIX socket only; root talks to
# its own private daemon, so no polkit (there is no polkitd here either)
auth_unix_ro = "none"
auth_unix_rw = "none"
# no TCP or TLS listeners (libvirtd would open them only with --listen)
listen_tcp = 0
listen_tls = 0
# libvirt refuses to migrate "to the same host": each instance is a host
host_uuid = "%(uuid)s"
# the daemon's log, quoted by the tests when something fails
log_outputs = "%(level)s:file:/var/log/libvirt/libvirtd.log"
"""

QEMU_CONF = """\
# QEMU runs as root: a vfsd mount without allow_other admits its mounter only
# (as libvirt-qemu: "Cannot access storage file ... (as uid:64055, gid:64055)")
user = "root"
group = "root"
# never chown images on the shared store: another host's QEMU may have them open
dynamic_ownership = 0
# no SELinux/AppArmor labelling, whether or not the machine has either
security_driver = "none"
# QEMU stays in this daemon's mount namespace, where stop() finds every process
namespaces = []
# else libvirt makes machine/ cgroups in this machine's tree and leaves them there
cgroup_controllers = []
# QEMU writes /var/log/libvirt/qemu/NAME.log itself: the default needs a virtlogd
# ("Failed to connect socket to '/run/libvirt/virtlogd-sock'")
stdio_handler = "file"
# the default, said here: no virtlockd/sanlock; vfsd's cross-host image locks
# (QEMU's OFD locks through the mount) keep a second writer out
lock_manager = "nop"
"""


NS_PROGRAM = r"""
import os, subprocess
def mount(*args):
    subprocess.run(["mount"] + list(args), check=True)
# a private /run: the pid file, /run/libvirt and whatever else libvirtd
# keeps there, without touching the machine's
mount("-t", "tmpfs", "-o", "mode=755", "vfsd-libvirt", "/run")
# a sysfs of the host's network namespace: libvirt lists the host's own
# network devices, not the machine's (and the machine's cgroup tree is not
# here); in the machine's own namespace, that is the sysfs there already
if %(netns)r:
    mount("-t", "sysfs", "sysfs", "/sys")
for inner, outer in %(dirs)r + %(binds)r:
    os.makedirs(inner, exist_ok=True)
    mount("--bind", outer, inner)
# The namespace holds a copy of every mount the machine had; a FUSE mount
# copied here would keep its daemon from ending after the owner unmounts
# it (other tests run on this machine): drop all but the binds'
keep = [inner for inner, _ in %(binds)r]
with open("/proc/self/mountinfo") as f:
    for line in f:
        fields = line.split()
        fstype = fields[fields.index("-") + 1]
        mp = fields[4].encode().decode("unicode_escape")
        if (fstype in ("fuse", "fuseblk") or fstype.startswith("fuse.")) and not any(
                mp == k or mp.startswith(k + "/") for k in keep):
            subprocess.run(["umount", "-l", mp], stderr=subprocess.DEVNULL)
os.execv(%(libvirtd)r, [%(libvirtd)r, "-f", "/etc/libvirt/libvirtd.conf"])
"""


class Libvirtd:
    """libvirtd in network namespace `netns` (None: the test's own) and a
    private mount namespace.  binds: {path inside: path here} of
    directories (vfsd mounts) to bind into the namespace."""

    def __init__(self, netns=None, binds=None, name=None, log_level=3):
        self.netns = netns
        self.binds = dict(binds or {})
        for inner in self.binds:
            if not inner.startswith("/var/lib/libvirt/"):
                # a mount point made elsewhere would land in the machine's tree
                raise ValueError("bind target %s is not under /var/lib/libvirt" % inner)
        self.name = name or netns or "libvirtd"
        self.log_level = log_level
        self.host_uuid = str(uuid.uuid4())
        self.proc = None
        self.mntns = None       # an open fd on its mount namespace
        self.work = None

    # -- paths --------------------------------------------------------------

    def host_path(self, inner):
        """The path here of `inner`, a path inside the namespace under one
        of its private state directories or binds."""
        # binds first: they lie under /var/lib/libvirt
        for base, outer in list(self.binds.items()) + [
                (base, os.path.join(self.work, sub)) for base, sub in STATE_DIRS]:
            if inner == base or inner.startswith(base + "/"):
                return outer + inner[len(base):]
        return inner

    @property
    def socket(self):
        return os.path.join(self.work, "run", "libvirt-sock")

    @property
    def uri(self):
        """The URI virsh (here, or a peer libvirtd) uses to reach it."""
        return "qemu+unix:///system?socket=" + self.socket

    def log(self, tail=6000):
        with contextlib.suppress(OSError):
            with open(os.path.join(self.work, "log", "libvirtd.log")) as f:
                return f.read()[-tail:]
        return ""

    def qemu_log(self, domain, tail=4000):
        with contextlib.suppress(OSError):
            with open(os.path.join(self.work, "log", "qemu", domain + ".log")) as f:
                return f.read()[-tail:]
        return ""

    def stderr(self):
        with contextlib.suppress(OSError):
            with open(os.path.join(self.work, "stderr")) as f:
                return f.read()[-4000:]
        return ""

    # -- life cycle ---------------------------------------------------------

    def _write_config(self):
        for _, sub in STATE_DIRS:
            os.mkdir(os.path.join(self.work, sub))
        etc = os.path.join(self.work, "etc")
        with open(os.path.join(etc, "libvirtd.conf"), "w") as f:
            f.write(LIBVIRTD_CONF % {"uuid": self.host_uuid, "level": self.log_level})
        with open(os.path.join(etc, "qemu.conf"), "w") as f:
            f.write(QEMU_CONF)

    def _program(self):
        """What runs in the new mount namespace (python3 -c): make the
        private directories, let go of other FUSE mounts, become libvirtd."""
        return NS_PROGRAM % {
            "dirs": [(inner, os.path.join(self.work, sub)) for inner, sub in STATE_DIRS],
            "binds": sorted(self.binds.items()), "libvirtd": LIBVIRTD,
            "netns": bool(self.netns)}

    def start(self, timeout=120):
        self.work = harness.tmpdir("vfsd-libvirt-")
        self._write_config()
        stderr = open(os.path.join(self.work, "stderr"), "w")
        # nsenter and unshare exec what they run, and the program execs
        # libvirtd:
        # self.proc.pid is libvirtd's
        cmd = harness.netns_prefix(self.netns) + [
            "unshare", "--mount", "--propagation", "private", "--",
            sys.executable, "-c", self._program()]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=stderr,
                                     stderr=subprocess.STDOUT)
        stderr.close()
        harness._cleanups.append(self.stop)

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError("libvirtd (%s) exited with %d:\n%s\n%s" % (
                    self.name, self.proc.returncode, self.stderr(), self.log()))
            if self.mntns is None:
                with contextlib.suppress(OSError):
                    mine = os.stat("/proc/self/ns/mnt").st_ino
                    fd = os.open("/proc/%d/ns/mnt" % self.proc.pid, os.O_RDONLY)
                    if os.fstat(fd).st_ino != mine:
                        self.mntns = fd
                    else:
                        os.close(fd)
            return os.path.exists(self.socket) and \
                self.virsh("uri", check=False, timeout=30).returncode == 0
        harness.wait_for(up, timeout, "libvirtd (%s) to answer" % self.name, interval=0.2)
        return self

    def virsh_cmd(self, *args):
        """The command line of virsh ARGS against this instance (to run it
        in the background)."""
        return [VIRSH, "-q", "-c", self.uri] + [str(a) for a in args]

    def virsh(self, *args, check=True, timeout=300):
        """virsh ARGS against this instance; with check, a failure raises
        with virsh's message and the end of the daemon's log."""
        r = subprocess.run(self.virsh_cmd(*args),
                           capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise AssertionError("virsh %s on %s failed (%d): %s%s\nlibvirtd log:\n%s" % (
                " ".join(str(a) for a in args), self.name, r.returncode, r.stdout, r.stderr,
                self.log(3000)))
        return r

    def domstate(self, domain):
        """'running', 'shut off', ... or None when the domain is unknown."""
        r = self.virsh("domstate", domain, check=False, timeout=60)
        if r.returncode != 0:
            if "failed to get domain" in r.stderr or "Domain not found" in r.stderr:
                return None
            raise AssertionError("virsh domstate %s on %s: %s" % (domain, self.name, r.stderr))
        return r.stdout.strip()

    def qemu_pid(self, domain):
        """The pid of the domain's QEMU (from libvirt's pid file)."""
        with open(self.host_path("/run/libvirt/qemu/%s.pid" % domain)) as f:
            return int(f.read().strip())

    def _namespace_pids(self):
        """Every process in this instance's mount namespace: libvirtd and
        what it started (QEMU, helpers); nothing else can be in there."""
        ino = os.fstat(self.mntns).st_ino
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            with contextlib.suppress(OSError):
                st = os.stat("/proc/%s/ns/mnt" % entry)
                if st.st_ino == ino and st.st_dev == os.fstat(self.mntns).st_dev:
                    pids.append(int(entry))
        return pids

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            r = self.virsh("list", "--name", check=False, timeout=60)
            for dom in r.stdout.split():
                self.virsh("destroy", dom, check=False, timeout=60)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.mntns is not None:
            # QEMUs the daemon left behind (it was killed, or failed to
            # destroy them): our mount namespace holds only what we started
            deadline = time.monotonic() + 30
            while True:
                pids = self._namespace_pids()
                if not pids:
                    break
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                if time.monotonic() > deadline:
                    raise AssertionError("processes %s of libvirtd (%s) do not die"
                                         % (pids, self.name))
                time.sleep(0.1)
            # the last reference: the namespace and its mounts go now
            os.close(self.mntns)
            self.mntns = None
        self.proc = None
