"""Serve a folder under /static with Litestar's static files router under uvicorn, as the
Litestar documentation shows it.

Usage: python litestar_static.py FOLDER PORT
The benchmark runs it with the target's own interpreter (the litestar release under test).
"""
import sys

import uvicorn
from litestar import Litestar
from litestar.static_files import create_static_files_router

folder, port = sys.argv[1], int(sys.argv[2])
app = Litestar(route_handlers=[create_static_files_router(path="/static", directories=[folder])])
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
