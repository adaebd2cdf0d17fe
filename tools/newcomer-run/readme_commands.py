"""Print the README's shell commands a newcomer runs, in order, NUL-separated.

The code blocks of the sections from "Use it with the openstack CLI" to "Cleaning up"; a
command continued with a trailing backslash is one command; the block of example output in the
tutorial (it starts with "backend ") is not commands.
"""

from __future__ import annotations

import re
import sys

SECTIONS = ("## Use it with the openstack CLI", "## Tutorial", "## TLS termination",
            "## L7 policies", "## Floating IPs", "## Cleaning up")


def commands(text: str) -> list[str]:
    out: list[str] = []
    parts = re.split(r"(?m)^(## .*)$", text)
    for head, body in zip(parts[1::2], parts[2::2], strict=True):
        if not head.startswith(SECTIONS):
            continue
        for block in re.findall(r"(?ms)^```\n(.*?)^```", body):
            if block.startswith("backend "):
                continue
            buf = ""
            for line in block.splitlines():
                buf = f"{buf}\n{line}" if buf else line
                if line.rstrip().endswith("\\"):
                    continue
                if buf.strip():
                    out.append(buf)
                buf = ""
    return out


if __name__ == "__main__":
    with open(sys.argv[1]) as fh:
        for cmd in commands(fh.read()):
            sys.stdout.write(cmd + "\0")
