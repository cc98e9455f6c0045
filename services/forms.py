"""Values typed into forms, read without trusting them."""


def to_int(text):
    """The whole number in `text` (spaces around it allowed), or None."""
    try:
        return int(str(text).strip())
    except ValueError:
        return None
