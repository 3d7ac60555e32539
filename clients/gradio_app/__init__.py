"""Shared plumbing for backends that are Gradio apps (AudioLDM, Applio/RVC, Wan2GP-compatible apps).

Plain Python: nothing in this package imports bpy. Facts: ``shared/protocols/gradio.md``.

Public API (everything runs on the runtime's asyncio loop; nothing here blocks it)::

    from ..gradio_app import GradioRunner, EndpointQuery, Role

    runner = GradioRunner(url, backend="rvc", network=self.network, max_workers=2, download_dir=None, hf_token=None)
    info = await runner.info()                       # AppInfo(url, version, endpoints=(EndpointInfo, ...))
    match = await runner.find_endpoint([EndpointQuery(names=("infer",), roles={"audio": Role(("audio",))})])
    result = await runner.call(match, *match.arguments({"audio": Path("in.wav")}), ctx=ctx, deadline=600)
    result.data      # what the endpoint returned (one value, or a tuple), files replaced by local paths
    result.files     # tuple[OutputFile]: every file, in ctx.output_dir (or runner.download_dir() without a ctx)
    await runner.close()

- ``GradioRunner(url, *, backend, network, max_workers=2, download_dir=None, hf_token=None)``: at most
  ``max_workers`` predictions in flight, each on a ``gradio_client.Client`` (one app session) built lazily on a
  worker thread (its constructor blocks) and reused for later calls: never one per call, never more than
  ``max_workers`` (why not one: see :mod:`.runner`). ``hf_token`` is sent only if given (a saved one never is).
- ``await runner.info() -> AppInfo``; ``await runner.find_endpoint(EndpointQuery | [EndpointQuery]) ->
  EndpointMatch``: by api/function name (``/text2audio``, auto-named ``/text2audio_1``), else by parameter
  names/labels/components per :class:`Role`; ``NotFoundError`` lists what the app offers.
  ``EndpointMatch.arguments({role: value})`` builds positional arguments with the app's defaults elsewhere;
  ``EndpointMatch.has(role)`` says whether the app has that input at all.
- ``await runner.call(endpoint, *args, ctx=None, deadline, **kwargs) -> CallResult``: ``endpoint`` is an api name,
  an ``fn_index``, an ``EndpointInfo`` or an ``EndpointMatch``; ``kwargs`` are the endpoint's named parameters;
  ``pathlib.Path`` values are uploaded. ``deadline`` (seconds) bounds queueing, running and downloading.
  ``gr.Progress`` goes to ``ctx.report_progress`` (stage = its description, step/total = tqdm index/length),
  ``gr.Info``/``gr.Warning`` to ``ctx.log``, processing to ``ctx.mark_running()``. Cancelling the awaiting task
  cancels the Gradio job.
- ``await runner.start(...)`` (same arguments) returns a :class:`GradioCall` once the app queued the job, for
  submit/wait-style clients: ``call.id`` (event id), ``await call.result() -> CallResult``, ``await call.cancel()``,
  ``call.done``, ``call.mapper.last`` (newest status).
- ``await runner.health() -> HealthInfo`` (never raises); ``runner.busy`` (calls in flight);
  ``await runner.close(timeout=2.0)`` cancels calls in flight and ends every thread (``runner.threads()`` lists
  those still alive).

Files are downloaded by the runner, not by gradio_client (which follows redirects to any host and has no size
limit): from the app's own address only, checked against Blender's online-access setting, at most
``max_file_bytes`` (keyword of the constructor), under sanitised unique names inside the target folder.

Errors: ``gr.Error`` -> JobFailedError (the app's message); cannot connect / connection lost mid-job ->
BackendUnavailableError (the next call reconnects); full queue -> RateLimitedError; our deadline ->
RequestTimeoutError; refused inputs -> InvalidRequestError; a cancelled call's result -> JobCancelledError;
anything unreadable -> ProtocolError.
"""

from __future__ import annotations

from .call import CallResult, GradioCall
from .endpoints import AppInfo, EndpointInfo, EndpointMatch, EndpointQuery, Param, Role
from .runner import GradioRunner

__all__ = [
    "AppInfo",
    "CallResult",
    "EndpointInfo",
    "EndpointMatch",
    "EndpointQuery",
    "GradioCall",
    "GradioRunner",
    "Param",
    "Role",
]
