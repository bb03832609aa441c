"""The browser console at /console for auditors and operators (docs/console.md).

Server-rendered pages over the same domain functions the API routes call; every asset
ships inside this package, and the only scripts are the proof checks in static/.
"""
