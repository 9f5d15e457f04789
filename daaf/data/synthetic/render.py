"""Drawing one synthetic pedestrian with its exact mask and 17 COCO keypoints.

The body is a 3-D stick figure in its own frame (x: the person's left, y: down, z: the
way they face) posed by a walking gait phase, turned by the viewpoint's yaw and projected
orthographically; parts are painted far to near, each into the image and into the person
layer, so the mask is the rendered foreground itself (anti-aliased coverage in [0, 1]).
Keypoints are the projected joints: "left" is always the person's left, so in a front view
the left shoulder is on the image's right.

A preset (``presets.py``) varies the pose and the crop (:meth:`Pose.vary`), hands the person
something to carry, and puts strangers behind and in front; the mask and keypoints stay those
of the target alone, and :class:`Conditions` records what was drawn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import cv2
import numpy as np

from daaf.data.synthetic.identity import Clothing, Fill, Identity
from daaf.data.synthetic.presets import PRESETS, Preset
from daaf.data.synthetic.scene import (
    AA,
    HEIGHT,
    WIDTH,
    Camera,
    apply_camera,
    draw_background,
    occlude,
    paint,
)

# Yaw of each viewpoint; "left": the person faces the image's left and shows their left side.
VIEWS = {"front": 0.0, "left": -np.pi / 2, "back": np.pi, "right": np.pi / 2}
SHIFT = 2  # cv2 fractional bits: coordinates are drawn at 1/4 pixel
FACE = {  # keypoint index: (offset from the head centre, surface normal), in head radii
    0: ((0.0, 0.25, 1.0), (0.0, 0.0, 1.0)),  # nose
    1: ((0.38, -0.1, 0.9), (0.5, 0.0, 0.87)),  # left eye
    2: ((-0.38, -0.1, 0.9), (-0.5, 0.0, 0.87)),  # right eye
    3: ((1.0, 0.0, -0.05), (1.0, 0.0, 0.0)),  # left ear
    4: ((-1.0, 0.0, -0.05), (-1.0, 0.0, 0.0)),  # right ear
}
FACE_VISIBLE = {0: -0.3, 1: 0.1, 2: 0.1, 3: -0.35, 4: -0.35}  # min cosine to the camera
BOX_COLOR = (160.0, 120.0, 75.0)  # cardboard
MAX_BEHIND = 3  # strangers in the background, at most
OCCLUDED_FRACTION = 0.1  # an image is "occluded" when this share of the person is hidden
MISALIGNED_ZOOM, MISALIGNED_SHIFT = 0.2, 0.125  # "misaligned": |zoom - 1|, |offset| / crop size


@dataclass(frozen=True)
class Pose:
    """Per-image placement of a person: viewpoint, gait, limbs and where the body stands.

    The fields after ``top`` are a preset's variation (:meth:`vary`); their defaults are the
    original generator's walking person in a centred, whole crop.
    """

    view: str
    yaw: float
    phase: float  # gait phase (rad); the right leg is half a cycle behind the left
    stride: float  # thigh swing amplitude (rad)
    scale: float
    center_x: float
    top: float  # image row of the top of the head when standing straight
    aspect: float = 1.0  # horizontal stretch of the crop
    arm_gait: float = 0.8  # arm swing against the legs, x stride
    arm_swing: tuple[float, float] = (0.0, 0.0)  # left, right: extra forward swing (rad)
    arm_spread: tuple[float, float] = (0.0, 0.0)  # sideways lift (rad)
    elbow_bend: tuple[float, float] = (0.0, 0.0)  # extra bend (rad)
    leg_spread: tuple[float, float] = (0.0, 0.0)  # sideways swing (rad)
    crouch: float = 0.0  # 0: upright; 1: knees deeply bent, torso leaning forward
    carry: str = "none"  # none, box (in both hands) or bag (in one hand)
    carry_side: int = 1  # +1: the bag hangs from the left hand
    zoom: float = 1.0  # recorded: the box's zoom on the person (scale already holds it)
    offset: tuple[float, float] = (0.0, 0.0)  # recorded: the body centre's shift (px)

    @classmethod
    def draw(cls, rng: np.random.Generator, identity: Identity) -> Pose:
        view = list(VIEWS)[rng.integers(len(VIEWS))]
        scale = rng.uniform(0.92, 1.05)
        room = max(HEIGHT - identity.height * scale, 0.0)
        return cls(
            view=view,
            yaw=VIEWS[view] + rng.uniform(-0.35, 0.35),
            phase=rng.uniform(0, 2 * np.pi),
            stride=rng.uniform(0.1, 0.45),
            scale=scale,
            center_x=WIDTH / 2 + rng.uniform(-4, 4),
            top=float(np.clip(room / 2 + rng.uniform(-3, 3), 0, room)),
        )

    def vary(self, identity: Identity, preset: Preset, rng: np.random.Generator) -> Pose:
        """This pose with ``preset``'s variation drawn from ``rng`` (the image's variation
        stream); the default preset's neutral values return an equal pose, bit for bit."""
        swing, spread = (
            rng.uniform(-1, 1, 2) * preset.arm_swing,
            rng.uniform(0, 1, 2) * preset.arm_spread,
        )
        bend, legs = (
            rng.uniform(0, 1, 2) * preset.elbow_bend,
            rng.uniform(0, 1, 2) * preset.leg_spread,
        )
        pose = replace(
            self,
            yaw=self.yaw + rng.uniform(-1, 1) * preset.turn,
            stride=self.stride + rng.uniform(0, 1) * preset.stride,
            arm_swing=tuple(swing.tolist()),
            arm_spread=tuple(spread.tolist()),
            elbow_bend=tuple(bend.tolist()),
            leg_spread=tuple(legs.tolist()),
            crouch=rng.uniform(0.5, 1.0) if rng.random() < preset.crouch else 0.0,
        )
        if rng.random() < preset.carry:
            side = int(rng.choice([-1, 1]))
            if rng.random() < 0.5:  # a box in both hands: forearms forward, no arm swing
                pose = replace(
                    pose,
                    carry="box",
                    carry_side=side,
                    arm_gait=0.0,
                    arm_swing=(0.35, 0.35),
                    arm_spread=(0.0, 0.0),
                    elbow_bend=(0.9, 0.9),
                )
            else:  # a bag in one hand: that arm hangs straight, a little out
                arm = 0 if side > 0 else 1
                spread, bend = list(pose.arm_spread), list(pose.elbow_bend)
                spread[arm], bend[arm] = 0.12, 0.0
                pose = replace(
                    pose,
                    carry="bag",
                    carry_side=side,
                    arm_spread=tuple(spread),
                    elbow_bend=tuple(bend),
                )
        return _place(pose, identity, preset, rng)


def _down(angle: float, spread: float = 0.0, side: int = 1) -> np.ndarray:
    """Unit vector pointing down, swung forward by ``angle`` and outwards by ``spread`` (rad)."""
    return np.array(
        [side * np.sin(spread), np.cos(angle) * np.cos(spread), np.sin(angle) * np.cos(spread)]
    )


def _lean(point: np.ndarray, pivot: float, angle: float) -> np.ndarray:
    """``point`` above the hips (row ``pivot``) turned forward by ``angle`` (rad) about them."""
    up = pivot - point[1]
    return point + [0.0, up * (1 - np.cos(angle)), up * np.sin(angle)]


def skeleton(identity: Identity, pose: Pose) -> dict[str, np.ndarray]:
    """3-D joints in the body frame at scale 1 (head top at y = 0 upright, soles on y = height)."""
    r, height = identity.head_radius, identity.height
    leg = identity.leg_fraction * height
    hip_y = height - leg
    shoulder_y = 2 * r + 0.05 * height
    arm = hip_y - shoulder_y + 0.08 * height
    lean = 0.6 * pose.crouch  # a crouching body leans forward over bent knees
    joints = {
        "head": _lean(np.array([0.0, r, 0.0]), hip_y, lean),
        "neck": _lean(np.array([0.0, 2 * r, 0.0]), hip_y, lean),
    }
    for i, (side, name) in enumerate(((1, "left"), (-1, "right"))):
        phase = pose.phase + (0.0 if side == 1 else np.pi)
        thigh = pose.stride * np.sin(phase) + 1.4 * pose.crouch
        bend = 0.1 + 1.3 * pose.stride * max(0.0, np.cos(phase)) + 2.4 * pose.crouch
        hip = np.array([side * identity.hip, hip_y, 0.0])
        knee = hip + 0.5 * (leg - 2) * _down(thigh, pose.leg_spread[i], side)
        ankle = knee + 0.5 * (leg - 2) * _down(thigh - bend, pose.leg_spread[i], side)
        swing = -pose.arm_gait * pose.stride * np.sin(phase) + pose.arm_swing[i]
        spread, elbow_bend = pose.arm_spread[i], pose.elbow_bend[i]
        shoulder = _lean(np.array([side * identity.shoulder, shoulder_y, 0.0]), hip_y, lean)
        elbow = shoulder + 0.53 * arm * _down(swing, spread, side) + [side * 1.0, 0, 0]
        forearm = swing + 0.2 + 0.5 * max(swing, 0.0) + elbow_bend
        wrist = elbow + 0.47 * arm * _down(forearm, spread, side) + [side * 0.5, 0, 0]
        joints.update(
            {
                f"{name}_hip": hip,
                f"{name}_knee": knee,
                f"{name}_ankle": ankle,
                f"{name}_shoulder": shoulder,
                f"{name}_elbow": elbow,
                f"{name}_wrist": wrist,
                f"{name}_toe": ankle + [0.0, 1.0, 2.5],
            }
        )
    # Feet on the ground: the standing leg carries the body, which bobs as the legs spread.
    lift = height - 2.0 - max(joints["left_ankle"][1], joints["right_ankle"][1])
    for joint in joints.values():
        joint[1] += lift
    return joints


def _middle(identity: Identity, pose: Pose) -> float:
    """Body-frame row halfway between the top of the head and the soles, in ``pose``."""
    return (skeleton(identity, pose)["head"][1] - identity.head_radius + identity.height) / 2


def _place(pose: Pose, identity: Identity, preset: Preset, rng: np.random.Generator) -> Pose:
    """The crop a person detector might give: zoomed about the body's centre, stretched,
    shifted, and cut with its top edge below the nose or its bottom edge above both ankles.

    A crouching body is centred where the upright one would be, as a detector's box would.
    """
    zoom = float(np.exp(rng.uniform(*np.log(preset.zoom))))
    aspect = float(np.exp(rng.uniform(*np.log(preset.aspect))))
    shift = rng.uniform(-1, 1, 2) * preset.shift * np.array([WIDTH, HEIGHT])
    upright, posed = _middle(identity, replace(pose, crouch=0.0)), _middle(identity, pose)
    scale = pose.scale * zoom
    top = pose.top + (pose.scale * upright - scale * posed) + shift[1]
    placed = replace(pose, scale=scale, aspect=aspect, center_x=pose.center_x + shift[0], top=top)
    cut = rng.random()
    if cut < preset.cut_head + preset.cut_feet:
        joints, project = skeleton(identity, placed), _Projector(placed)
        if cut < preset.cut_head:
            nose = project(joints["head"] + identity.head_radius * np.asarray(FACE[0][0]))[1]
            top -= nose + 1 + rng.uniform(0, 0.25) * scale * identity.height
        else:
            ankle, hip = (
                min(project(joints[f"{s}_{j}"])[1] for s in ("left", "right"))
                for j in ("ankle", "hip")
            )
            top += HEIGHT - (ankle - 1 - rng.uniform(0, 0.35) * (ankle - hip))
    offset = (float(shift[0]), float((top - pose.top) + (scale * posed - pose.scale * upright)))
    return replace(placed, top=float(top), zoom=zoom, offset=offset)


class _Projector:
    """Body frame -> image: yaw, scale and placement; ``depth`` grows towards the camera."""

    def __init__(self, pose: Pose):
        self.cos, self.sin, self.pose = np.cos(pose.yaw), np.sin(pose.yaw), pose

    def __call__(self, point) -> np.ndarray:
        x, y, z = point
        p = self.pose
        horizontal = p.scale * p.aspect * (x * self.cos + z * self.sin)
        return np.array([p.center_x + horizontal, p.top + p.scale * y])

    def depth(self, point) -> float:
        return float(-point[0] * self.sin + point[2] * self.cos)

    def width(self, lateral: float, depth: float) -> float:
        """Half width in the image of a body part ``lateral`` wide and ``depth`` deep (half sizes)."""
        return (
            self.pose.scale * self.pose.aspect * (abs(lateral * self.cos) + abs(depth * self.sin))
        )


def _fixed(points) -> np.ndarray:
    return np.round(np.asarray(points, np.float64) * (1 << SHIFT)).astype(np.int32)


def _stroke(points, width: float) -> np.ndarray:
    region = np.zeros((HEIGHT, WIDTH), np.uint8)
    pts = _fixed(points)
    for a, b in zip(pts[:-1], pts[1:], strict=True):
        cv2.line(region, tuple(a.tolist()), tuple(b.tolist()), 255, max(1, round(width)), AA, SHIFT)
    return region


def _polygon(points) -> np.ndarray:
    region = np.zeros((HEIGHT, WIDTH), np.uint8)
    cv2.fillPoly(region, [_fixed(points)], 255, AA, SHIFT)
    return region


def _ellipse(center, axes, start: float = 0, end: float = 360) -> np.ndarray:
    region = np.zeros((HEIGHT, WIDTH), np.uint8)
    axes = tuple(max(1, int(round(a * (1 << SHIFT)))) for a in axes)
    cv2.ellipse(region, tuple(_fixed(center).tolist()), axes, 0, start, end, 255, -1, AA, SHIFT)
    return region


def _erase(layer: np.ndarray, region: np.ndarray) -> None:
    """Remove ``region``'s coverage from ``layer`` (both uint8): what is in front hides it."""
    layer[:] = (layer.astype(np.uint16) * (255 - region) + 127) // 255


class _Canvas:
    """The image being drawn and the person layer (uint8 coverage) painted alongside it.

    Carried things are painted in depth order with the body (:meth:`hold`) but are not the
    person: they hide what is behind them in ``layer`` and keep their own visible coverage in
    ``held``; ``whole`` is the person's coverage with nothing in front.
    """

    def __init__(self, image: np.ndarray):
        self.image = image
        self.layer = np.zeros((HEIGHT, WIDTH), np.uint8)
        self.held = np.zeros_like(self.layer)
        self.whole = np.zeros_like(self.layer)

    def paint(self, region: np.ndarray, fill: Fill) -> None:
        paint(self.image, region, fill, self.layer)
        np.maximum(self.whole, region, out=self.whole)
        _erase(self.held, region)

    def hold(self, region: np.ndarray, fill: Fill) -> None:
        paint(self.image, region, fill, self.held)
        _erase(self.layer, region)


def _body_parts(identity: Identity, pose: Pose, joints: dict, project: _Projector):
    """(depth, draw function) of every part of the person, to paint far to near."""
    p = {name: project(j) for name, j in joints.items()}
    lower_origin = _pelvis(joints)
    lower = identity.lower.fill(project(lower_origin))
    parts = [(0.0, _torso(identity, pose, joints, project, lower))]
    for name in ("left", "right"):
        parts += _limb_parts(identity, pose, joints, project, lower, p, name)
    if pose.carry != "none":
        parts.append(_carried(identity, pose, joints, project))
    parts += _bag_parts(identity, pose, joints, project, p)
    parts += _head_parts(identity, pose, joints, project)
    return parts


def _pelvis(joints: dict) -> np.ndarray:
    """The midpoint of the hips, where the lower garment and the bags hang from."""
    return (joints["left_hip"] + joints["right_hip"]) / 2


def _torso(
    identity: Identity, pose: Pose, joints: dict, project: _Projector, lower: Fill
) -> Callable[[_Canvas], None]:
    """The draw function of the torso: the upper garment, and the lower one down to the crotch."""
    s = pose.scale
    upper = identity.upper.fill(project(joints["neck"]))
    lower_origin = _pelvis(joints)

    def torso(c: _Canvas) -> None:
        top = project((joints["left_shoulder"] + joints["right_shoulder"]) / 2)
        bottom = project(lower_origin)
        wide = project.width(identity.shoulder, identity.depth)
        narrow = project.width(identity.hip, identity.depth * 0.9)
        c.paint(
            _polygon(
                [top + [-wide, -1], top + [wide, -1], bottom + [narrow, 1], bottom + [-narrow, 1]]
            ),
            upper,
        )
        crotch = bottom + [0, 0.12 * identity.leg_fraction * identity.height * s]
        c.paint(
            _polygon(
                [
                    bottom + [-narrow, 0],
                    bottom + [narrow, 0],
                    crotch + [narrow * 0.8, 0],
                    crotch + [-narrow * 0.8, 0],
                ]
            ),
            lower,
        )

    return torso


def _limb_parts(
    identity: Identity,
    pose: Pose,
    joints: dict,
    project: _Projector,
    lower: Fill,
    p: dict[str, np.ndarray],
    name: str,
):
    """(depth, draw function) of the leg and the arm of side ``name``; ``p``: projected joints."""
    s = pose.scale
    sleeve = identity.upper.color
    hip, knee, ankle = (joints[f"{name}_{j}"] for j in ("hip", "knee", "ankle"))
    shoulder, elbow, wrist = (joints[f"{name}_{j}"] for j in ("shoulder", "elbow", "wrist"))

    def leg(
        c: _Canvas,
        hip=p[f"{name}_hip"],
        knee=p[f"{name}_knee"],
        ankle=p[f"{name}_ankle"],
        toe=p[f"{name}_toe"],
    ) -> None:
        width = identity.limb * 1.35 * s
        if identity.shorts:
            c.paint(_stroke([(hip + knee) / 2, knee, ankle], width * 0.8), identity.skin)
            c.paint(_stroke([hip, hip + (knee - hip) * 0.6], width * 1.1), lower)
        else:
            c.paint(_stroke([hip, knee, ankle], width), lower)
        foot = (ankle + toe) / 2
        c.paint(_ellipse(foot, (1.4 * s + abs(ankle[0] - toe[0]) * 0.7, 1.6 * s)), identity.shoes)

    def arm(
        c: _Canvas,
        shoulder=p[f"{name}_shoulder"],
        elbow=p[f"{name}_elbow"],
        wrist=p[f"{name}_wrist"],
    ) -> None:
        width = identity.limb * s
        c.paint(_stroke([shoulder, elbow, wrist], width), identity.skin)
        cuff = elbow if identity.short_sleeves else wrist - (wrist - elbow) * 0.15
        sleeve_points = [shoulder, elbow] if identity.short_sleeves else [shoulder, elbow, cuff]
        c.paint(_stroke(sleeve_points, width + (0.8 if identity.short_sleeves else 0)), sleeve)

    leg_depth = np.mean([project.depth(j) for j in (hip, knee, ankle)])
    arm_depth = np.mean([project.depth(j) for j in (shoulder, elbow, wrist)])
    return [(leg_depth - 0.5, leg), (arm_depth, arm)]


def _bag_parts(
    identity: Identity, pose: Pose, joints: dict, project: _Projector, p: dict[str, np.ndarray]
):
    """(depth, draw function) of the bag the person wears: a backpack (and its straps, seen from
    the front) or a shoulder bag; none without a bag. ``p``: the projected joints."""
    s = pose.scale
    lower_origin = _pelvis(joints)
    parts: list[tuple[float, Callable[[_Canvas], None]]] = []
    if identity.bag == "backpack":
        center = np.array([0.0, (joints["neck"][1] + lower_origin[1]) / 2, -identity.depth - 2])

        def backpack(c: _Canvas) -> None:
            mid = project(center)
            half = project.width(identity.shoulder * 0.75, 2.5)
            tall = 0.3 * (lower_origin[1] - joints["neck"][1]) * s
            c.paint(
                _polygon(
                    [
                        mid + [-half, -tall],
                        mid + [half, -tall],
                        mid + [half, tall],
                        mid + [-half, tall],
                    ]
                ),
                identity.bag_color,
            )

        def straps(c: _Canvas) -> None:
            for side in ("left", "right"):
                start = p[f"{side}_shoulder"] * 0.6 + p["neck"] * 0.4
                c.paint(_stroke([start, start + [0, 14 * s]], 1.5), identity.bag_color * 0.7)

        parts.append((project.depth(center), backpack))
        if project.depth(center) < -identity.depth:  # seen from the front: the straps show
            parts.append((identity.depth + 0.1, straps))
    elif identity.bag == "shoulder":
        hang = np.array([identity.bag_side * (identity.shoulder + 2.5), lower_origin[1] - 2, 0.0])

        def shoulder_bag(c: _Canvas) -> None:
            other = "right" if identity.bag_side > 0 else "left"
            c.paint(_stroke([p[f"{other}_shoulder"], project(hang)], 1.5), identity.bag_color * 0.7)
            c.paint(
                _ellipse(project(hang), (project.width(2.5, 4.0) + 1, 5 * s)), identity.bag_color
            )

        parts.append((project.depth(hang) + 0.2, shoulder_bag))
    return parts


def _carried(identity: Identity, pose: Pose, joints: dict, project: _Projector):
    """(depth, draw function) of what the person carries: a box held in front in both hands,
    or their bag hanging from one hand; painted as a thing held, not as the person."""
    s = pose.scale
    if pose.carry == "box":
        wrists = joints["left_wrist"], joints["right_wrist"]
        center = (wrists[0] + wrists[1]) / 2 - [0.0, 0.03 * identity.height, 0.0]
        lateral, tall, color = (
            0.4 * abs(wrists[0][0] - wrists[1][0]),
            0.08 * identity.height,
            BOX_COLOR,
        )
    else:
        side = "left" if pose.carry_side > 0 else "right"
        center = joints[f"{side}_wrist"] + [pose.carry_side * 1.5, 0.07 * identity.height, 0.0]
        lateral, tall, color = 4.5, 0.07 * identity.height, identity.bag_color

    def carried(c: _Canvas) -> None:
        mid, half = project(center), project.width(lateral, 0.5 * lateral)
        c.hold(
            _polygon(
                [
                    mid + [-half, -tall * s],
                    mid + [half, -tall * s],
                    mid + [half, tall * s],
                    mid + [-half, tall * s],
                ]
            ),
            color,
        )

    return project.depth(center) + 0.3, carried


def _head_parts(identity: Identity, pose: Pose, joints: dict, project: _Projector):
    """Neck, head and hair; long hair hangs behind the head and over the back."""
    s, r = pose.scale, identity.head_radius
    head = joints["head"]
    parts: list[tuple[float, Callable[[_Canvas], None]]] = []
    if identity.long_hair:
        tail = np.array([0.0, joints["neck"][1] + 0.12 * identity.height, -identity.depth - 0.5])

        def long_hair(c: _Canvas) -> None:
            c.paint(
                _stroke([project(head + [0, 0, -0.3 * r]), project(tail)], 1.8 * r * s),
                identity.hair,
            )

        parts.append((project.depth(tail), long_hair))

    def face(c: _Canvas) -> None:
        c.paint(
            _stroke([project(joints["neck"]), project(joints["neck"] + [0, 3, 0])], 0.9 * r * s),
            identity.skin,
        )
        center = project(head)
        c.paint(_ellipse(center, (0.92 * r * s, r * s)), identity.skin)
        c.paint(
            _ellipse(center - [0, 0.2 * r * s], (r * s * 1.02, 0.85 * r * s), 180, 360),
            identity.hair,
        )
        back = head + [0, -0.1 * r, -0.45 * r]
        if project.depth(back) > project.depth(head) - 0.05 * r:  # the back of the head shows
            c.paint(_ellipse(project(back), (0.8 * r * s, 0.9 * r * s)), identity.hair)

    parts.append((1e3, face))
    return parts


def _keypoints(joints: dict, identity: Identity, project: _Projector) -> np.ndarray:
    """float64 (17, 3) COCO keypoints in image pixels, score 1 where the point is seen."""
    names = ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")
    keypoints = np.zeros((17, 3))
    for k, (offset, normal) in FACE.items():
        point = joints["head"] + identity.head_radius * np.asarray(offset)
        seen = project.depth(normal) >= FACE_VISIBLE[k]
        keypoints[k] = (*project(point), 1.0) if seen else (np.nan, np.nan, 0.0)
    for i, name in enumerate(names):
        for j, side in enumerate(("left", "right")):
            keypoints[5 + 2 * i + j] = (*project(joints[f"{side}_{name}"]), 1.0)
    return keypoints


def _hide(keypoints: np.ndarray, cover: np.ndarray) -> None:
    """Keypoints outside the image or under something in front (uint8 ``cover`` >= 128) become
    NaN, score 0: the store's *not found*."""
    for k, (x, y, score) in enumerate(keypoints):
        if score == 0:
            continue
        col, row = int(np.floor(x)), int(np.floor(y))
        if not (0 <= col < WIDTH and 0 <= row < HEIGHT) or cover[row, col] >= 128:
            keypoints[k] = (np.nan, np.nan, 0.0)


@dataclass(frozen=True)
class Conditions:
    """What one image shows beyond a centred, whole, walking person: a row of ``conditions.csv``."""

    view: str
    zoom: float  # the box's zoom on the person (1: the default preset's size)
    aspect: float  # its horizontal stretch
    offset_x: float  # the body centre's shift from the default preset's placement (px)
    offset_y: float
    cut_head: bool  # the crop's top edge is below the nose: the face keypoints are cut off
    cut_feet: bool  # its bottom edge is above both ankles
    crouching: bool
    carrying: str  # none, box or bag
    occluder: str  # the object occluder's kind (scene.OCCLUDERS) or none
    people_in_front: int  # strangers drawn in front of the person
    people_behind: int  # strangers drawn behind
    occluded_fraction: float  # share of the person's pixels hidden by things and people in front

    @property
    def occluded(self) -> bool:
        return self.occluded_fraction >= OCCLUDED_FRACTION

    @property
    def misaligned(self) -> bool:
        shifted = (
            abs(self.offset_x) > MISALIGNED_SHIFT * WIDTH
            or abs(self.offset_y) > MISALIGNED_SHIFT * HEIGHT
        )
        return self.cut_head or self.cut_feet or abs(self.zoom - 1) > MISALIGNED_ZOOM or shifted


def _draw_person(canvas: _Canvas, identity: Identity, pose: Pose) -> tuple[dict, _Projector]:
    """Paint ``identity`` in ``pose``, far parts first; returns its joints and projection."""
    joints, project = skeleton(identity, pose), _Projector(pose)
    for _, draw in sorted(_body_parts(identity, pose, joints, project), key=lambda part: part[0]):
        draw(canvas)
    return joints, project


def _stranger(rng: np.random.Generator, identity: Identity, target: Pose, front: bool) -> Pose:
    """Where another person stands: in front, nearer and to one side of the target so that
    they hide part of them, or behind, smaller and anywhere."""
    pose = Pose.draw(rng, identity)
    if front:
        side = rng.choice([-1, 1])
        return replace(
            pose,
            scale=target.scale * rng.uniform(1.0, 1.2),
            top=target.top + rng.uniform(-8, 8),
            center_x=target.center_x + side * rng.uniform(0.3, 0.65) * WIDTH,
        )
    return replace(
        pose,
        scale=target.scale * rng.uniform(0.5, 0.85),
        top=rng.uniform(-0.1, 0.45) * HEIGHT,
        center_x=rng.uniform(-0.1, 1.1) * WIDTH,
    )


@dataclass(frozen=True)
class Variation:
    """A preset's departures from a centred, whole, walking person (pose, crop, carried things,
    the strangers of ``crowd`` behind and in front), drawn from ``rng`` (None: a fixed stream)."""

    preset: Preset = PRESETS["default"]
    rng: np.random.Generator | None = None
    crowd: tuple[Identity, ...] = ()


def render_person(
    identity: Identity,
    camera: Camera,
    rng: np.random.Generator,
    foreign: list[Clothing],
    occlusion: float,
    pose: Pose | None = None,
    variation: Variation = Variation(),
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Conditions]:
    """One image of ``identity`` seen by ``camera``, in ``pose`` (default: drawn from ``rng``).

    The preset's ``variation`` is drawn from its own stream, never from ``rng``.

    Returns:
        image: uint8 (128, 64, 3) RGB; mask: float32 (128, 64) coverage of this person only in
        [0, 1], without what is in front; keypoints: float32 (17, 3) x, y, score (NaN, NaN, 0
        when hidden by something in front, outside the image or a face point on the far side of
        the head); conditions: what the image shows (:class:`Conditions`).
    """
    preset, crowd = variation.preset, variation.crowd
    varied = np.random.default_rng(0) if variation.rng is None else variation.rng
    canvas = _Canvas(draw_background(rng, camera, foreign))
    pose = (Pose.draw(rng, identity) if pose is None else pose).vary(identity, preset, varied)
    behind = min(int(varied.poisson(preset.people_behind)), MAX_BEHIND, len(crowd))
    strangers = crowd[: behind + int(varied.random() < preset.people_in_front)]
    for other in strangers[:behind]:
        _draw_person(_Canvas(canvas.image), other, _stranger(varied, other, pose, front=False))
    joints, project = _draw_person(canvas, identity, pose)
    keypoints = _keypoints(joints, identity, project)
    cover = np.zeros_like(canvas.layer)
    for other in strangers[behind:]:
        passer = _Canvas(canvas.image)
        _draw_person(passer, other, _stranger(varied, other, pose, front=True))
        cover = passer.layer
    occluder = "none"
    if rng.random() < occlusion:
        region, occluder = occlude(canvas.image, rng, camera, foreign)
        np.maximum(cover, region, out=cover)
    layer = canvas.layer.copy()
    _erase(layer, cover)
    _hide(keypoints, np.maximum(cover, canvas.held))
    hidden = float(1 - layer.sum(dtype=np.int64) / max(canvas.whole.sum(dtype=np.int64), 1))
    people = (len(strangers) - behind, behind)
    conditions = _conditions(identity, pose, joints, project, occluder, people, hidden)
    image = apply_camera(canvas.image, rng, camera)
    return image, layer.astype(np.float32) / 255.0, keypoints.astype(np.float32), conditions


def _conditions(
    identity: Identity,
    pose: Pose,
    joints: dict,
    project: _Projector,
    occluder: str,
    people: tuple[int, int],
    occluded_fraction: float,
) -> Conditions:
    """The :class:`Conditions` of an image of ``identity`` in ``pose``; ``people``: strangers in
    front and behind."""
    nose = project(joints["head"] + identity.head_radius * np.asarray(FACE[0][0]))[1]
    ankle = min(project(joints[f"{side}_ankle"])[1] for side in ("left", "right"))
    return Conditions(
        view=pose.view,
        zoom=pose.zoom,
        aspect=pose.aspect,
        offset_x=pose.offset[0],
        offset_y=pose.offset[1],
        cut_head=bool(nose < 0),
        cut_feet=bool(ankle >= HEIGHT),
        crouching=pose.crouch > 0,
        carrying=pose.carry,
        occluder=occluder,
        people_in_front=people[0],
        people_behind=people[1],
        occluded_fraction=occluded_fraction,
    )


def render_scene(camera: Camera, rng: np.random.Generator, foreign: list[Clothing]) -> np.ndarray:
    """uint8 (128, 64, 3) RGB background without a person (Market-1501's junk boxes)."""
    return apply_camera(draw_background(rng, camera, foreign), rng, camera)
