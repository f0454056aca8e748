"""What went wrong with a generation, in plain words, and what the user can do about it."""

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
        "not resent automatically. If Kinovi's callback arrives it resolves itself; otherwise "
        "re-check now, or retry if you accept the risk of paying twice.",
    ),
    "stalled": (
        "Kinovi has not finished this video within its usual window",
        "Re-check now to ask Kinovi again. If it stays stuck, retry it.",
    ),
}


def explain_problem(generation, last_event=None) -> dict | None:
    """The one mapping from a generation's error to words a user can act on."""
    status = generation.status
    code = (generation.error_code or "").lower()
    message = (generation.error_message or "").lower()
    kind = None
    if status == Status.STALLED:
        kind = "stalled"
    elif status == Status.UNKNOWN:
        kind = "unknown"
    elif status == Status.REJECTED:
        if code == "402" or "credit" in code:
            kind = "credits"
        elif code in {"401", "403"} or "key" in message:
            kind = "key"
        elif code == "400":
            kind = "invalid"
        elif code == "429":
            kind = "concurrency"
        elif code == "unreachable":
            kind = "unreachable"
        else:
            kind = "failed"
    elif status == Status.FAIL:
        if code == "2038" or "moderation" in code or "violat" in message:
            kind = "moderation"
        elif code.startswith("5") or "server" in code or "server" in message:
            kind = "server"
        else:
            kind = "failed"
    elif status == Status.QUEUED and last_event is not None and "429" in last_event.detail:
        # Backed off after a 429: waiting for a slot, nothing wrong with the video itself.
        kind = "concurrency"
    if kind is None:
        return None
    title, advice = PROBLEMS[kind]
    return {"kind": kind, "title": title, "advice": advice}
