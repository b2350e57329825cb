"""The host token tools' one exception family."""


class TokenToolError(Exception):
    """Bad input to the host token tools (a key, a token, a CLI argument); the message
    is one line for the user."""
