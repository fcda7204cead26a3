"""The ceiling apps: what this machine's server stack can do with (almost) no application.

``python -m bench.apps KIND --port P`` serves one of

- ``bare``: a bare ASGI callable (no framework) answering a constant, pre-serialized JSON;
- ``starlette``: a Starlette app with one route returning ``JSONResponse({...})``;
- ``fastapi``: a FastAPI app with one ``@app.get`` returning a dict (FastAPI's "hello").

They run on exactly the server edgemeta runs on (see ``edgemeta.cli._serve``): uvicorn with
httptools, inside ``uvloop.run``, access log off, lifespan off, no server header.
"""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn
import uvloop

HELLO = {"apiVersion": "v3", "message": "hello", "statusCode": 200}


def bare_app() -> Any:
    import orjson

    body = orjson.dumps(HELLO)
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    message = {"type": "http.response.body", "body": body}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send(start)
        await send(message)

    return app


def starlette_app() -> Any:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def hello(request: Any) -> JSONResponse:
        return JSONResponse(HELLO)

    return Starlette(routes=[Route("/", hello)])


def fastapi_app() -> Any:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/")
    async def hello() -> dict[str, Any]:
        return HELLO

    return app


APPS = {"bare": bare_app, "starlette": starlette_app, "fastapi": fastapi_app}


async def serve(app: Any, port: int) -> None:
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        http="httptools",
        server_header=False,
    )
    await uvicorn.Server(config).serve()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=sorted(APPS))
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvloop.run(serve(APPS[args.kind](), args.port))


if __name__ == "__main__":
    main()
