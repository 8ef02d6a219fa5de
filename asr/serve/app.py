"""The FastAPI application of ``asr serve`` and the uvicorn server that runs it.

Routes: ``GET /`` (the dictation page), ``GET /health``, ``GET /v1/models``,
``POST /v1/audio/transcriptions`` (OpenAI's, see :mod:`asr.serve.uploads`) and
``WS /v1/stream`` (:mod:`asr.serve.streams`). Both models load once, when the app starts
(FastAPI's lifespan); until then ``/health`` answers 503.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from asr.errors import ASRError
from asr.serve.batching import BatchQueue
from asr.serve.config import ServeConfig
from asr.serve.limits import BodyLimit, BodyTooLarge, authorized
from asr.serve.page import page_asset, page_html
from asr.serve.responses import render_response
from asr.serve.streams import StreamHub
from asr.serve.uploads import UploadError, decode_upload, parse_form

logger = logging.getLogger(__name__)

# Form fields other than the file: a handful of short values.
MAX_FORM_FIELDS = 32
CREATED = 0  # /v1/models' "created": the bundled models carry no creation time


def error_response(status: int, message: str) -> JSONResponse:
    """OpenAI's error shape: ``{"error": {"message", "type"}}``."""
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error"}}, status_code=status)


@dataclass
class Served:
    """What the lifespan loads: the file model's batch queue and the stream hub."""

    batches: BatchQueue
    streams: StreamHub
    models: tuple[str, ...]


def load_served(config: ServeConfig) -> Served:
    import asr
    from streaming.stream import Recognizer, RecognizerConfig

    model = asr.load_model(config.model, threads=config.threads)
    recognizer = Recognizer(asr.load_model(config.streaming_model), RecognizerConfig(quantize=config.stream_quantize))
    logger.info("models loaded: %s (files), %s (streams)", config.model, config.streaming_model)
    batches = BatchQueue(model, config.batch_wait_ms / 1000, config.long_audio_seconds)
    hub = StreamHub(recognizer, config.max_streams, config.max_message_bytes)
    return Served(batches, hub, (config.model, config.streaming_model))


def create_app(config: ServeConfig) -> FastAPI:
    """The server's app; its models load when it starts (lifespan), not here."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.served = await run_in_threadpool(load_served, config)
        try:
            yield
        finally:
            app.state.served.batches.close()

    app = FastAPI(title="asr serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.served = None
    app.add_middleware(BodyLimit, max_bytes=config.max_upload_bytes)

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        return error_response(413, str(exc))

    @app.middleware("http")
    async def require_key(request: Request, call_next):
        if not authorized(_credentials(request.headers, request.query_params), config.api_key):
            return error_response(401, "missing or wrong API key (Authorization: Bearer KEY)")
        return await call_next(request)

    _add_routes(app, config)
    return app


def _add_routes(app: FastAPI, config: ServeConfig) -> None:
    @app.get("/health")
    async def health() -> JSONResponse:
        ready = app.state.served is not None
        return JSONResponse({"status": "ready" if ready else "loading"}, status_code=200 if ready else 503)

    @app.get("/v1/models")
    async def models() -> JSONResponse:
        data = [
            {"id": n, "object": "model", "created": CREATED, "owned_by": "asr-toolkit"} for n in app.state.served.models
        ]
        return JSONResponse({"object": "list", "data": data})

    @app.get("/", response_class=HTMLResponse)
    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(page_html(request.query_params.get("api_key") if config.api_key else None))

    @app.get("/static/{name}")
    async def static(name: str) -> Response:
        found = page_asset(name)
        return Response(found[0], media_type=found[1]) if found else error_response(404, f"no asset {name!r}")

    @app.post("/v1/audio/transcriptions")
    async def transcriptions(request: Request) -> Response:
        return await _transcribe(request, app.state.served)

    @app.websocket("/v1/stream")
    async def stream(websocket: WebSocket) -> None:
        if not authorized(_credentials(websocket.headers, websocket.query_params), config.api_key):
            await websocket.send_denial_response(error_response(401, "missing or wrong API key"))
            return
        await app.state.served.streams.serve(websocket)


def _credentials(headers, query_params) -> str | None:
    """The ``Authorization`` header, or ``?api_key=`` as a bearer token: a browser can set no
    header when it opens a page or a WebSocket, so the dictation page passes the key that way."""
    key = query_params.get("api_key")
    return headers.get("authorization") or (f"Bearer {key}" if key else None)


async def _transcribe(request: Request, served: Served) -> Response:
    """One ``POST /v1/audio/transcriptions``: 400 with the reason for anything wrong with it."""
    try:
        form = await request.form(max_files=1, max_fields=MAX_FORM_FIELDS)
    except BodyTooLarge:
        raise
    except HTTPException as exc:  # Starlette's word for a multipart body it cannot parse
        return error_response(400, f"not a readable multipart/form-data body ({exc.detail})")
    except (ValueError, KeyError, UnicodeDecodeError) as exc:
        return error_response(400, f"not a multipart/form-data request with a file field ({exc})")
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise UploadError("file: missing (send the audio as the multipart field 'file')")
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str) and not k.startswith("timestamp_")}
        granularities = [
            v for k, v in form.multi_items() if k in ("timestamp_granularities[]", "timestamp_granularities")
        ]
        parsed = parse_form(fields, granularities, served.models)
        data = await upload.read()
        model = served.batches.model
        waveform = await run_in_threadpool(
            decode_upload, data, upload.filename or "", model.sample_rate, model.min_samples
        )
    except UploadError as exc:
        return error_response(400, str(exc))
    finally:
        await form.close()
    try:
        transcript = await served.batches.transcribe(waveform, parsed.options)
    except ASRError as exc:  # the options ask for something the model cannot do (an LM it lacks)
        return error_response(400, str(exc))
    if transcript.error is not None:
        return error_response(400, transcript.error)
    return render_response(transcript, parsed.response_format, parsed.granularities)


def run_server(config: ServeConfig) -> None:
    """Serve ``config`` with uvicorn until interrupted; WebSocket messages are bounded there too."""
    import uvicorn

    uvicorn.run(
        create_app(config), host=config.host, port=config.port, ws_max_size=config.max_message_bytes,
        log_level="info", access_log=False,
    )  # fmt: skip
