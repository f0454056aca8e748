"""The sandbox's own price list: credits per output second, as the vendor's current pages say.

On purpose independent of the studio's price table: the sandbox plays the vendor, so a wrong
row in the studio's table must show up as a mismatch against `price()`, not be mirrored. A test
can walk `combinations()` and compare the studio's estimate with `price()` for each.
"""

import itertools

MODELS = ("seedance-20", "seedance2-fast")
# Credits per output second by model and output resolution ("After the seed" table). The fast
# model has no 1080p. The seed's 40 and 28 are the 720p rates.
CREDITS_PER_SECOND = {
    "seedance-20": {"480p": 15, "720p": 40, "1080p": 83},
    "seedance2-fast": {"480p": 10, "720p": 28},
}
UPSCALE_4K_CREDITS_PER_SECOND = 28
# A reference video among the materials adds this much per output second (once, however many
# videos there are), by model and resolution.
REFERENCE_VIDEO_CREDITS_PER_SECOND = {
    "seedance-20": {"480p": 4, "720p": 8, "1080p": 17},
    "seedance2-fast": {"480p": 3, "720p": 6},
}
DURATIONS = range(4, 16)


def resolutions(model: str) -> tuple[str, ...]:
    return tuple(CREDITS_PER_SECOND[model])


def price(
    *,
    model: str,
    duration: int,
    resolution: str = "720p",
    upscale_4k: bool = False,
    reference_video: bool = False,
) -> int:
    """Credits for one task. KeyError for a model or resolution the vendor does not sell.

    `resolution` defaults to 720p so the seed's examples (40/28 per second) still read as
    written; the API's own default when a request omits it is 1080p (see inputs.py)."""
    per_second = CREDITS_PER_SECOND[model][resolution]
    if upscale_4k:
        per_second += UPSCALE_4K_CREDITS_PER_SECOND
    if reference_video:
        per_second += REFERENCE_VIDEO_CREDITS_PER_SECOND[model][resolution]
    return per_second * duration


def combinations():
    """Every (model, resolution, upscale_4k, reference_video) the vendor prices."""
    for model in MODELS:
        for resolution, upscale, video in itertools.product(
            resolutions(model), (False, True), (False, True)
        ):
            yield model, resolution, upscale, video
