"""Errors the command line turns into one line on stderr and exit status 2."""


class UsageError(Exception):
    """Bad input from the user: the message is one line naming the problem and the fix."""
