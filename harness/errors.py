"""The one exception type whose message is shown to the user as a single line."""


class UserError(Exception):
    """Something the user can fix; the message says what and how, in one line."""
