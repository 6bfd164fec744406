"""The one exception type for mistakes a user can make (bad spec, missing file, ...).

The CLI prints its message as a single line and exits with code 2; no traceback.
"""


class StudyError(Exception):
    """A user-caused error. The message names the culprit (file, field, value) on one line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
