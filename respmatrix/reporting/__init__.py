"""Renderers: pure functions from a results document to a published form."""

# One symbol per outcome, shared by every report so the page, the Markdown and the diff agree.
OUTCOME_SYMBOLS = {
    "pass": "✓",
    "fail": "✗",
    "unsupported": "—",
    "divergent": "≠",
    "error": "!",
    "skipped": "s",
}
