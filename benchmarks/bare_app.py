"""The baseline for the load benchmark: a FastAPI endpoint that only reads the body.

Served like the node (uvicorn, 2 workers, uvloop, httptools), it shows what the HTTP
stack alone costs on this machine, so the node's figure can be read as a ratio.
"""

from __future__ import annotations

from fastapi import FastAPI, Request, Response

app = FastAPI()


@app.post("/v1/messages", status_code=201)
async def receive(request: Request) -> Response:
    await request.body()
    return Response(status_code=201, media_type="application/jose")


@app.get("/v1/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
