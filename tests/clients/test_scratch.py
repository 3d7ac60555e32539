"""Stand-ins' scratch folders go when their process ends, including when it is stopped with terminate()."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from movie_director.clients.scratch import scratch_dir, scratch_root

CHILD = """
import sys
from movie_director.clients.scratch import exit_on_sigterm, scratch_dir
exit_on_sigterm()
answer = scratch_dir("md-scratch-test-")
(answer / "clip.avi").write_bytes(b"x" * 10)
print(answer, flush=True)
sys.stdin.read()  # serve until stopped
"""


def test_a_terminated_server_process_leaves_no_folder_behind() -> None:
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        answer = Path(proc.stdout.readline().strip())
        assert (answer / "clip.avi").is_file()
        proc.terminate()
        assert proc.wait(10) == 0  # exited through sys.exit(0), not killed by the signal
        assert not answer.exists() and not answer.parent.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


def test_answers_get_fresh_folders_under_one_root_per_prefix() -> None:
    a, b = scratch_dir("md-scratch-same-"), scratch_dir("md-scratch-same-")
    assert a != b and a.parent == b.parent == scratch_root("md-scratch-same-")
    assert scratch_root("md-scratch-other-") != a.parent
