"""``drivers/local/confine.py`` on its own: a command run confined, as an amphora agent is, sees
only its own home of the hidden directory and its own namespaces, no host process, a read-only
host that the agent's CAP_SYS_ADMIN cannot remount (syscall_filter.py), and (with an agent
child's bounding set, agent/netns.py) cannot enter a namespace.

Needs root; makes three namespaces (recorded, deleted at the end) and a temporary directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lbaas.agent.netns import CHILD_KEEP

pytestmark = pytest.mark.usefixtures("root")


@pytest.fixture
def site() -> Iterator[tuple[Path, list[str]]]:
    tag = uuid.uuid4().hex[:6]
    spaces = [f"cft{tag}-a", f"cft{tag}-ad", f"cft{tag}-b"]
    made: list[str] = []
    with tempfile.TemporaryDirectory(prefix="cft") as tmp:
        data = Path(tmp) / "data"
        for home in ("amp-a", "amp-b"):
            (data / "amphorae" / home / "tls").mkdir(parents=True)
            (data / "amphorae" / home / "tls" / "heartbeat.key").write_text(home)
        (data / "pki").mkdir()
        (data / "pki" / "ca.key").write_text("CA KEY")
        (data / "secrets_key").write_text("SECRETS")
        try:
            for space in spaces:
                subprocess.run(["ip", "netns", "add", space], check=True)
                made.append(space)
            yield data, spaces
        finally:
            for space in made:
                subprocess.run(["ip", "netns", "delete", space], check=False)


def _confined(data: Path, spaces: list[str], *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", spaces[0], sys.executable, "-m", "lbaas.drivers.local.confine",
         "--home", str(data / "amphorae" / "amp-a"), "--hide", str(data),
         "--netns", spaces[0], "--netns", spaces[1], "--", *command],
        capture_output=True, text=True, timeout=30, env={**os.environ, "LC_ALL": "C"})


# what the agent does to start HAProxy, keepalived or nft: DataNamespace.preexec
AS_AGENT_CHILD = """
import subprocess, sys
from lbaas.agent.netns import DataNamespace
space = DataNamespace(sys.argv[1])
sys.exit(subprocess.run(["sh", "-c", sys.argv[2]], preexec_fn=space.preexec()).returncode)
"""


def test_the_confined_command_sees_only_its_own_home_and_namespaces(
        site: tuple[Path, list[str]]) -> None:
    data, spaces = site
    script = (f"cat {data}/amphorae/amp-a/tls/heartbeat.key; echo;"
              f"cat {data}/pki/ca.key {data}/secrets_key {data}/amphorae/amp-b/tls/heartbeat.key"
              f" 2>/dev/null && echo SECRET-READ;"
              f"nsenter --net=/run/netns/{spaces[2]} true 2>/dev/null && echo ENTERED;"
              f"echo netns: $(ls /run/netns);"
              f"echo procs: $(ls /proc | grep -c '^[0-9]');"
              f"echo new > {data}/amphorae/amp-a/written && echo home-writable;"
              "echo pid $$")
    host = subprocess.run(["sh", "-c", script], capture_output=True, text=True).stdout
    # with the agent's CAP_SYS_ADMIN: the covers cannot be undone (the syscall filter)
    script += (f"; umount -l {data} 2>/dev/null && echo UNMOUNTED;"
               "mount -o remount,rw / 2>/dev/null && echo REMOUNTED;"
               "mount -t tmpfs none /mnt 2>/dev/null && echo MOUNTED;"
               "unshare -m true 2>/dev/null && echo UNSHARED;"
               "touch /etc/cft-probe 2>/dev/null && echo ETC-WRITTEN;"
               "grep Seccomp: /proc/self/status; true")
    assert "SECRET-READ" in host and "ENTERED" in host, host  # the same script on the host
    out = _confined(data, spaces, "sh", "-c", script)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("amp-a\n"), out.stdout
    assert "SECRET-READ" not in out.stdout and "ENTERED" not in out.stdout, out.stdout
    assert f"netns: {spaces[0]} {spaces[1]}\n" in out.stdout
    assert int(out.stdout.split("procs: ")[1].split()[0]) <= 6  # init, sh, the pipeline
    assert "home-writable" in out.stdout and "ETC-WRITTEN" not in out.stdout
    for undone in ("UNMOUNTED", "REMOUNTED", "MOUNTED", "UNSHARED"):
        assert undone not in out.stdout, out.stdout
    assert "Seccomp:\t2" in out.stdout, out.stdout
    assert not Path("/etc/cft-probe").exists()
    assert (data / "amphorae" / "amp-a" / "written").read_text() == "new\n"
    assert "pid 1\n" in out.stdout  # the command is the namespace's init


def test_with_a_childs_capabilities_no_namespace_can_be_entered(
        site: tuple[Path, list[str]]) -> None:
    data, spaces = site
    script = (f"nsenter --net=/run/netns/{spaces[0]} true; grep CapBnd /proc/self/status;"
              "readlink /proc/self/ns/net")
    out = _confined(data, spaces, sys.executable, "-c", AS_AGENT_CHILD, spaces[1], script)
    assert "Operation not permitted" in out.stderr, out.stderr
    bounding = int(out.stdout.split()[1], 16)
    ours = next(int(line.split()[1], 16) for line in Path("/proc/self/status").read_text()
                .splitlines() if line.startswith("CapBnd:"))
    assert bounding == sum(1 << cap for cap in CHILD_KEEP) & ours  # (ours may lack some)
    data_ns = os.stat(f"/run/netns/{spaces[1]}").st_ino  # the child does run in the data one
    assert out.stdout.split()[2] == f"net:[{data_ns}]", out.stdout


def test_a_signal_to_the_recorded_pid_reaches_the_command(site: tuple[Path, list[str]]) -> None:
    data, spaces = site
    proc = subprocess.Popen(
        ["ip", "netns", "exec", spaces[0], sys.executable, "-m", "lbaas.drivers.local.confine",
         "--home", str(data / "amphorae" / "amp-a"), "--hide", str(data), "--netns", spaces[0],
         "--", "sh", "-c", "trap 'echo got-term; exit 3' TERM; echo up; "
                           "while :; do sleep 0.05; done"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "up\n"
        proc.terminate()  # what LocalCompute._stop_agent does to agent.pid
        assert proc.wait(timeout=10) == 3
        assert proc.stdout.read() == "got-term\n"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
