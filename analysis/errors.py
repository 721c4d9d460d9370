"""The one exception analysis raises for bad input; the command line turns it into exit 2."""


class AnalysisInputError(ValueError):
    """Bad or foreign input file; the message is one line naming the fix."""
