"""``daaf synth --preset NAME``: how far each image departs from a centred, whole, walking person.

A preset is data: the ranges and probabilities of the variation drawn for every image on top
of the original generator (box misalignment, pose, carried things, other people, occluders).
All of it is drawn from an image's own *variation* stream, never from its image stream, and
the ``default`` preset's values are all neutral (zoom 1, shift 0, probability 0), so
``daaf synth`` without ``--preset`` writes the original generator's bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from daaf.errors import DaafError


@dataclass(frozen=True)
class Preset:
    """Per-image variation of one preset; every default is the neutral value."""

    name: str
    summary: str
    occlusion: float = 0.1  # probability of an object occluder (`--occlusion` overrides it)
    # Detector-like boxes: the person's size, stretch and offset in the crop, and cut-off crops.
    zoom: tuple[float, float] = (1.0, 1.0)  # log-uniform factor on the person's size
    aspect: tuple[float, float] = (1.0, 1.0)  # log-uniform factor on the width (a wider box)
    shift: tuple[float, float] = (
        0.0,
        0.0,
    )  # max |offset| of the body centre, x and y, in crop sizes
    cut_head: float = 0.0  # probability that the crop's top edge passes below the nose
    cut_feet: float = 0.0  # probability that its bottom edge passes above both ankles
    # Poses: walking direction, limb angles, crouching and carrying.
    turn: float = 0.0  # extra yaw, uniform in +- turn (rad): directions between the four views
    stride: float = 0.0  # extra thigh swing amplitude, uniform in [0, stride] (rad)
    arm_swing: float = 0.0  # per arm: extra forward (+) or backward swing, +- (rad)
    arm_spread: float = 0.0  # per arm: sideways lift, [0, arm_spread] (rad)
    elbow_bend: float = 0.0  # per arm: extra elbow bend, [0, elbow_bend] (rad)
    leg_spread: float = 0.0  # per leg: sideways swing, [0, leg_spread] (rad)
    crouch: float = 0.0  # probability of crouching (knees bent, hips low, torso leaning)
    carry: float = 0.0  # probability of carrying a box in both hands or a bag in one
    # Other people: strangers (no pid of the dataset) behind the person and passing in front.
    people_behind: float = 0.0  # mean number of people in the background (Poisson, at most 3)
    people_in_front: float = 0.0  # probability that one passes in front, partly hiding the person
    # The original generator's output: no conditions table, no preset named in the store, so
    # its bytes stay those of the first study.
    legacy: bool = False


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            "default",
            "the original generator: centred, whole, walking people; occluders at --occlusion",
            legacy=True,
        ),
        Preset(
            "misaligned",
            "detector-like boxes (zoom, shift, cut at the head or feet), varied poses, "
            "crouching and carrying, other people behind and in front, more occluders",
            occlusion=0.3,
            zoom=(0.75, 1.3),
            aspect=(0.85, 1.2),
            shift=(0.16, 0.15),
            cut_head=0.2,
            cut_feet=0.2,
            turn=0.8,
            stride=0.25,
            arm_swing=0.6,
            arm_spread=0.5,
            elbow_bend=1.2,
            leg_spread=0.25,
            crouch=0.15,
            carry=0.2,
            people_behind=0.8,
            people_in_front=0.25,
        ),
    )
}


def preset_named(name: str) -> Preset:
    """The preset called ``name``; DaafError listing the presets if there is none."""
    if name not in PRESETS:
        raise DaafError(f"unknown synth preset {name!r}; the presets are: {', '.join(PRESETS)}")
    return PRESETS[name]
