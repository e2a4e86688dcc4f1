"""Serve a folder with Starlette's StaticFiles under uvicorn, as Starlette documents it.

Usage: python starlette_static.py FOLDER PORT
The benchmark runs it with the target's own interpreter (the starlette release under test).
"""
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

folder, port = sys.argv[1], int(sys.argv[2])
app = Starlette(routes=[Mount("/", app=StaticFiles(directory=folder, html=True), name="static")])
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
