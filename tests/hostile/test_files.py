"""Files on this computer: a full disk is the output folder's fault, said so once and not retried (issue 12 item 19);
a missing input file is named (item 20); leftover ``.part-*`` files are swept and one job's downloads have a total
cap (item 22); error messages quote values faithfully (item 21)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp import web
from hostile_support import Peer, Plain, files_under
from movie_director.clients.http import PART_PREFIX, HttpBackendClient, download_to, require_file, safe_path
from movie_director.runtime import BackendConfig, HealthInfo
from movie_director.runtime.errors import (
    InvalidRequestError,
    MovieDirectorError,
    ProtocolError,
    error_from_exception,
    positive_number,
)
from movie_director.runtime.jobs import JobError
from movie_director.runtime.partials import remove_partials
from movie_director.runtime.retry import RetryPolicy

FAST = RetryPolicy(max_retries=2, base_delay=0.01, max_delay=0.02, deadline=20.0)


def payload(size: int) -> Callable[[web.Request], object]:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"\x01" * size, content_type="application/octet-stream")

    return handler


def fetch_into(peer: Peer, folder: Path, name: str, **kw: object) -> object:
    async def main() -> object:
        client = Plain(BackendConfig(name="plain", urls=peer.url, retry=FAST))
        try:

            async def once() -> object:
                async with client.session(peer.url).get(name) as resp:
                    return await download_to(resp, safe_path(folder, name), backend="plain", **kw)  # type: ignore[arg-type]

            from movie_director.runtime.retry import call_with_retry

            return await call_with_retry(once, FAST, backend="plain")
        finally:
            await client.close()

    return asyncio.run(asyncio.wait_for(main(), 20))


def test_a_jobs_downloads_together_are_capped(serve: Callable[..., Peer], tmp_path: Path) -> None:
    peer = serve(payload(300_000))
    folder = tmp_path / "job"
    folder.mkdir()
    fetch_into(peer, folder, "a.bin", max_job_bytes=700_000)
    fetch_into(peer, folder, "b.bin", max_job_bytes=700_000)
    with pytest.raises(ProtocolError, match="job's files together"):
        fetch_into(peer, folder, "c.bin", max_job_bytes=700_000)
    assert [p.name for p in files_under(folder)] == ["a.bin", "b.bin"]  # nothing partial left behind


def test_leftover_partials_are_swept_when_the_job_downloads_again(serve: Callable[..., Peer], tmp_path: Path) -> None:
    folder = tmp_path / "job"
    folder.mkdir()
    stale = folder / f"{PART_PREFIX}killed"
    stale.write_bytes(b"half a file")  # what kill -9 in the middle of a download leaves
    peer = serve(payload(1000))
    fetch_into(peer, folder, "out.bin")
    assert [p.name for p in files_under(folder)] == ["out.bin"]
    (folder / f"{PART_PREFIX}again").write_bytes(b"x")
    assert remove_partials(folder) == 1  # what the runtime calls when a job resumes or ends
    assert [p.name for p in files_under(folder)] == ["out.bin"]
    assert remove_partials(tmp_path / "missing") == 0


FULL_DISK = textwrap.dedent(
    """
    import asyncio, json, sys
    from pathlib import Path
    from movie_director.clients.http import HttpBackendClient, download_to, safe_path
    from movie_director.runtime import BackendConfig, HealthInfo
    from movie_director.runtime.errors import MovieDirectorError
    from movie_director.runtime.retry import RetryPolicy, call_with_retry

    class Plain(HttpBackendClient):
        name = "plain"
        async def submit(self, job, ctx): ...
        async def get_result(self, job, ctx): ...
        async def health(self): return HealthInfo(ok=True)

    url, folder = sys.argv[1], Path(sys.argv[2])
    policy = RetryPolicy(max_retries=2, base_delay=0.01, max_delay=0.02, deadline=20.0)

    async def main():
        client = Plain(BackendConfig(name="plain", urls=url, retry=policy))
        async def once():
            async with client.session(url).get("big.bin") as resp:
                return await download_to(resp, safe_path(folder, "big.bin"), backend="plain")
        try:
            await call_with_retry(once, policy, backend="plain")
            return {"ok": True}
        except MovieDirectorError as exc:
            return {"code": exc.code.value, "message": str(exc), "retryable": exc.retryable}
        finally:
            await client.close()

    out = asyncio.run(main())
    out["files"] = sorted(p.name for p in folder.iterdir())
    print(json.dumps(out))
    """
)


def test_a_full_output_disk_is_a_local_error_that_is_not_retried(serve: Callable[..., Peer], tmp_path: Path) -> None:
    """A real full file system: a 256 KiB tmpfs in a private mount namespace (``unshare``), no mocking."""
    unshare = shutil.which("unshare")
    if unshare is None or sys.platform != "linux":
        pytest.skip("needs Linux's unshare to mount a small private file system")
    probe = subprocess.run([unshare, "-rm", "true"], capture_output=True, timeout=10)
    if probe.returncode != 0:
        pytest.skip(f"unprivileged mount namespaces are not available: {probe.stderr.decode()[:200]}")
    peer = serve(payload(2_000_000))
    folder = tmp_path / "small"
    folder.mkdir()
    script = tmp_path / "full_disk.py"
    script.write_text(FULL_DISK)
    shell = (
        f'mount -t tmpfs -o size=256k tmpfs "{folder}" && exec "{sys.executable}" "{script}" "{peer.url}" "{folder}"'
    )
    done = subprocess.run(
        [unshare, "-rm", "sh", "-c", shell], capture_output=True, timeout=60, env=dict(os.environ), text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["code"] == "output_folder", out
    assert f"The output folder {folder} is full" in out["message"], out
    assert "Cannot reach" not in out["message"] and not out["retryable"]
    assert len(peer.hits) == 1  # said once, not tried three times
    assert out["files"] == []  # the partial file was removed


def test_a_missing_input_file_is_an_invalid_request_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent" / "in.png"
    with pytest.raises(InvalidRequestError, match=re.escape(str(missing))):
        require_file(missing, backend="comfyui")
    with pytest.raises(InvalidRequestError, match="is a folder"):
        require_file(tmp_path)
    # ...and wherever a client opens a file itself, the job's error still names it (one mapping for every job):
    try:
        open(missing, "rb")  # noqa: SIM115
    except FileNotFoundError as exc:
        error = JobError.from_exception(exc)
    assert error.code == "invalid_request" and str(missing) in error.message
    assert "Unexpected error" not in error.message


def test_a_negative_length_is_refused_with_its_range() -> None:
    with pytest.raises(InvalidRequestError, match=r"seconds must be a number above 0 \(got -3\)"):
        positive_number("seconds", -3)
    for bad in (0, float("nan"), float("inf"), "long"):
        with pytest.raises(InvalidRequestError):
            positive_number("seconds", bad)
    assert positive_number("seconds", "2.5") == 2.5


def test_generate_video_refuses_negative_seconds() -> None:
    pytest.importorskip("bpy")
    from movie_director.operators.generate_video import video_request

    with pytest.raises(InvalidRequestError, match=r"seconds must be a number above 0 \(got -3\)"):
        video_request("a cat", seconds=-3)
    assert video_request("a cat", seconds=2)["video_length"] == "2s"  # at the model's own frame rate


@pytest.mark.parametrize(
    "message", ["Cannot read 'a..b'", "The name ../../x was refused", "Ends with dots..", "Wait...", "x. y.. z"]
)
def test_error_text_quotes_values_faithfully(message: str) -> None:
    error = MovieDirectorError(message, backend="b", status=400, hint="Do this.")
    assert message in str(error)
    assert str(error).endswith("Do this.")
    assert ".." not in str(MovieDirectorError("Done.", hint="Next."))  # no doubled full stop of our own


def test_unexpected_errors_keep_their_text_but_never_a_key() -> None:
    from movie_director.runtime.errors import register_secret

    register_secret("sk-unexpected-secret-123456")
    error = error_from_exception(RuntimeError("boom with sk-unexpected-secret-123456"))
    assert error.code.value == "internal_error" and "boom" in str(error)
    assert "sk-unexpected" not in str(error)


class LeavesPartial(HttpBackendClient):
    """A backend whose job folder holds a ``.part-*`` from an earlier, killed download when the job ends."""

    name = "partial"

    async def submit(self, job, ctx):  # type: ignore[no-untyped-def]
        (ctx.output_dir / f"{PART_PREFIX}from-a-killed-run").write_bytes(b"half")
        (ctx.output_dir / "kept.txt").write_text("a finished output")
        return None

    async def get_result(self, job, ctx):  # type: ignore[no-untyped-def]
        if job.request.get("fail"):
            raise ProtocolError("the server said something odd")
        from movie_director.runtime import JobOutputs

        return JobOutputs(text="done")

    async def health(self) -> HealthInfo:
        return HealthInfo(ok=True)


@pytest.mark.parametrize("fail", [False, True])
def test_no_partial_file_outlives_its_job(tmp_path: Path, fail: bool) -> None:
    from movie_director.runtime import Runtime

    rt = Runtime(output_root=tmp_path / "out")
    rt.register_backend("partial", LeavesPartial, BackendConfig(name="partial"))
    try:
        job = rt.submit("partial", "x", {"fail": fail}).wait(10)
        assert job.done and (job.error is not None) is fail
        folder = tmp_path / "out" / "partial" / job.id
        assert [p.name for p in files_under(folder)] == ["kept.txt"]
    finally:
        rt.stop()
