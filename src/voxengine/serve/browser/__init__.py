"""The browser endpoint: a WebSocket carrying JSON control messages and binary PCM16
(:mod:`voxengine.serve.browser.ws`), and the served page (``static/``)."""
