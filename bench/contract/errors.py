"""Errors the command line turns into one line on stderr and exit status 2."""


class UsageError(Exception):
    """Bad input from the user: the message is one line naming the problem and the fix."""


class AnalysisInputError(ValueError):
    """A results directory or file that analysis cannot read (missing, foreign, corrupt); the message is
    one line naming the file and the fix. Re-exported as `analysis.AnalysisInputError`."""
