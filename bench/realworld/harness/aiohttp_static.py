"""Serve a folder with aiohttp's static route, following symlinks, as aiohttp documents it.

Usage: python aiohttp_static.py FOLDER PORT
The benchmark runs it with the target's own interpreter (the aiohttp release under test).
follow_symlinks=True is the documented option whose containment check CVE-2024-23334 is about.
"""
import sys

from aiohttp import web

folder, port = sys.argv[1], int(sys.argv[2])
app = web.Application()
app.router.add_static("/static/", folder, follow_symlinks=True)
web.run_app(app, host="127.0.0.1", port=port, print=None)
