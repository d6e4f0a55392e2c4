"""Errors a user can cause: shown as one clear line, never as a traceback."""


class UserError(Exception):
    """Bad config, unreadable input or a bad argument; the message says what to do."""
