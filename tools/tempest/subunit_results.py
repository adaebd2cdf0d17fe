"""Read a subunit v2 stream on stdin and print one JSON object: test id -> status and reason.

Runs with the tempest venv's Python (python-subunit and testtools live there, not in .venv).
The status is subunit's (``success``, ``fail``, ``skip``, ``xfail``, ``uxsuccess``); the reason
is the skip reason or the traceback. Tempest's class-level fixtures (``setUpClass``) report as
tests of their own, so a failed class setup shows up too.
"""

from __future__ import annotations

import json
import sys

import subunit
import testtools


def main() -> None:
    results: dict[str, dict[str, str]] = {}

    def record(test: dict) -> None:  # type: ignore[type-arg]
        if test["status"] in ("exists", "inprogress"):
            return
        details = test["details"]
        text = ""
        for name in ("reason", "traceback"):
            if name in details:
                text += details[name].as_text()
        results[test["id"]] = {"status": test["status"], "reason": text}

    stream = subunit.ByteStreamToStreamResult(sys.stdin.buffer, non_subunit_name="stdout")
    result = testtools.StreamToDict(record)
    result.startTestRun()
    try:
        stream.run(result)
    finally:
        result.stopTestRun()
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
