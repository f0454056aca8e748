"""What went wrong with a generation, in plain words, and what the user can do about it."""

from generations import vendor
from generations.models import Status

# What went wrong, in plain words, and what to do about it. Keyed by what the lifecycle stores.
PROBLEMS = {
    "moderation": (
        "Kinovi's moderation rejected the prompt",
        "Rephrase the prompt without the words that may break the platform's content rules, "
        "then remix it. Nothing was charged: failed tasks are refunded in full.",
    ),
    "credits": (
        "The Kinovi account behind this key has too few credits",
        "Top up the Kinovi account (or ask whoever owns the key), or pick another key, then retry. "
        "Nothing was charged.",
    ),
    "key": (
        "Kinovi refused the API key",
        "The key is wrong, revoked, or the account has no API access. An owner or admin should "
        "replace it on the keys page; then retry. Nothing was charged.",
    ),
    "invalid": (
        "Kinovi refused the parameters",
        "See the field errors below, fix them in a remix, and generate again. Nothing was charged.",
    ),
    "concurrency": (
        "The key had too many videos in progress",
        "Nothing to do: the video waits in the local queue and is sent when a slot frees up.",
    ),
    "unreachable": (
        "Kinovi could not be reached",
        "Nothing was sent and nothing charged. Check that Kinovi is up (or the network), then "
        "retry.",
    ),
    "server": (
        "Kinovi had a server error while making the video",
        "This is on Kinovi's side and usually passes. Retry in a moment; the failed attempt was "
        "refunded.",
    ),
    "failed": (
        "Kinovi could not make this video",
        "Retry, or remix with a different prompt. Failed tasks are refunded in full.",
    ),
    "unknown": (
        "We never got Kinovi's answer to the request",
        "The request may or may not have reached Kinovi (and may have been charged), so it is "
        "not resent automatically.",
    ),
    "paused": (
        "Kinovi refused this video's API key, so we stopped asking about it",
        "The video may still be finishing at Kinovi, and its estimate stays reserved against the "
        "budget. An owner or admin of the workspace should make the key work again (at Kinovi, "
        "then 'Check again' on the Keys page); checking resumes at once and the video "
        "reaches its real status.",
    ),
    "stalled": (
        "Kinovi has not finished this video within its usual window",
        "Re-check now to ask Kinovi again. If it stays stuck, retry it.",
    ),
}


# The stored error code of a rejected generation (vendor.py writes them) → a kind above.
REJECTED_KINDS = {
    vendor.NO_CREDITS: "credits",
    vendor.KEY_REFUSED: "key",
    vendor.NO_API_ACCESS: "key",
    vendor.KEY_UNREADABLE: "key",
    vendor.INVALID: "invalid",
    vendor.UNREACHABLE: "unreachable",
}
# Kinovi's own failure codes (recordInfo's error.code) that mean something to the user.
MODERATION_CODES = {"2038"}


def _kind(generation) -> str | None:
    status, code = generation.status, generation.error_code or ""
    if generation.is_paused:
        # Read from the key's stored status: the same rule that keeps its polls from running.
        return "paused"
    if status in (Status.STALLED, Status.UNKNOWN):
        return status
    if status == Status.REJECTED:
        return REJECTED_KINDS.get(code, "failed")
    if status == Status.FAIL:
        if code in MODERATION_CODES:
            return "moderation"
        return "server" if code.startswith("5") else "failed"
    if status == Status.QUEUED and code == vendor.CONCURRENCY:
        # Backed off after a 429: waiting for a slot, nothing wrong with the video itself.
        return "concurrency"
    return None


def explain_problem(generation) -> dict | None:
    """The one mapping from a generation's stored error code to words a user can act on."""
    kind = _kind(generation)
    if kind is None:
        return None
    title, advice = PROBLEMS[kind]
    return {"kind": kind, "title": title, "advice": advice}
