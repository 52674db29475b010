"""Modules every handler asset that names them gets a copy of (see ``trading_constructs.assets``).

In the wheel they are ``trading_constructs.handlers._shared.*``; in a Lambda asset they are
top-level modules beside the handler. Handlers import them in a way that works in both.
"""
