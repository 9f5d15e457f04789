"""Drawing one synthetic pedestrian with its exact mask and 17 COCO keypoints.

The body is a 3-D stick figure in its own frame (x: the person's left, y: down, z: the
way they face) posed by a walking gait phase, turned by the viewpoint's yaw and projected
orthographically; parts are painted far to near, each into the image and into the person
layer, so the mask is the rendered foreground itself (anti-aliased coverage in [0, 1]).
Keypoints are the projected joints: "left" is always the person's left, so in a front view
the left shoulder is on the image's right.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from daaf.data.synthetic.identity import Clothing, Fill, Identity
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


@dataclass(frozen=True)
class Pose:
    """Per-image placement of a person: viewpoint, gait and where the body stands."""

    view: str
    yaw: float
    phase: float  # gait phase (rad); the right leg is half a cycle behind the left
    stride: float  # thigh swing amplitude (rad)
    scale: float
    center_x: float
    top: float  # image row of the top of the head when standing straight

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


def _down(angle: float) -> np.ndarray:
    """Unit vector pointing down, swung forward by ``angle`` (rad)."""
    return np.array([0.0, np.cos(angle), np.sin(angle)])


def skeleton(identity: Identity, pose: Pose) -> dict[str, np.ndarray]:
    """3-D joints in the body frame at scale 1 (head top at y = 0, soles on y = height)."""
    r, height = identity.head_radius, identity.height
    leg = identity.leg_fraction * height
    hip_y = height - leg
    shoulder_y = 2 * r + 0.05 * height
    arm = hip_y - shoulder_y + 0.08 * height
    joints = {"head": np.array([0.0, r, 0.0]), "neck": np.array([0.0, 2 * r, 0.0])}
    for side, name in ((1, "left"), (-1, "right")):
        phase = pose.phase + (0.0 if side == 1 else np.pi)
        thigh = pose.stride * np.sin(phase)
        bend = 0.1 + 1.3 * pose.stride * max(0.0, np.cos(phase))  # the swinging leg bends
        hip = np.array([side * identity.hip, hip_y, 0.0])
        knee = hip + 0.5 * (leg - 2) * _down(thigh)
        ankle = knee + 0.5 * (leg - 2) * _down(thigh - bend)
        swing = -0.8 * pose.stride * np.sin(phase)  # arms swing against the legs
        shoulder = np.array([side * identity.shoulder, shoulder_y, 0.0])
        elbow = shoulder + 0.53 * arm * _down(swing) + [side * 1.0, 0, 0]
        wrist = elbow + 0.47 * arm * _down(swing + 0.2 + 0.5 * max(swing, 0.0)) + [side * 0.5, 0, 0]
        joints.update({f"{name}_hip": hip, f"{name}_knee": knee, f"{name}_ankle": ankle,
                       f"{name}_shoulder": shoulder, f"{name}_elbow": elbow, f"{name}_wrist": wrist,
                       f"{name}_toe": ankle + [0.0, 1.0, 2.5]})  # fmt: skip
    # Feet on the ground: the standing leg carries the body, which bobs as the legs spread.
    lift = height - 2.0 - max(joints["left_ankle"][1], joints["right_ankle"][1])
    for joint in joints.values():
        joint[1] += lift
    return joints


class _Projector:
    """Body frame -> image: yaw, scale and placement; ``depth`` grows towards the camera."""

    def __init__(self, pose: Pose):
        self.cos, self.sin, self.pose = np.cos(pose.yaw), np.sin(pose.yaw), pose

    def __call__(self, point) -> np.ndarray:
        x, y, z = point
        p = self.pose
        return np.array([p.center_x + p.scale * (x * self.cos + z * self.sin), p.top + p.scale * y])

    def depth(self, point) -> float:
        return float(-point[0] * self.sin + point[2] * self.cos)

    def width(self, lateral: float, depth: float) -> float:
        """Half width in the image of a body part ``lateral`` wide and ``depth`` deep (half sizes)."""
        return self.pose.scale * (abs(lateral * self.cos) + abs(depth * self.sin))


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


class _Canvas:
    """The image being drawn and the person layer (uint8 coverage) painted alongside it."""

    def __init__(self, image: np.ndarray):
        self.image = image
        self.layer = np.zeros((HEIGHT, WIDTH), np.uint8)

    def paint(self, region: np.ndarray, fill: Fill) -> None:
        paint(self.image, region, fill, self.layer)


def _body_parts(identity: Identity, pose: Pose, joints: dict, project: _Projector):
    """(depth, draw function) of every part of the person, to paint far to near."""
    s = pose.scale
    p = {name: project(j) for name, j in joints.items()}
    upper = identity.upper.fill(p["neck"])
    lower_origin = (joints["left_hip"] + joints["right_hip"]) / 2
    lower = identity.lower.fill(project(lower_origin))
    sleeve = identity.upper.color
    parts: list[tuple[float, Callable[[_Canvas], None]]] = []

    def torso(c: _Canvas) -> None:
        top = project((joints["left_shoulder"] + joints["right_shoulder"]) / 2)
        bottom = project(lower_origin)
        wide = project.width(identity.shoulder, identity.depth)
        narrow = project.width(identity.hip, identity.depth * 0.9)
        c.paint(_polygon([top + [-wide, -1], top + [wide, -1], bottom + [narrow, 1], bottom + [-narrow, 1]]),
                upper)  # fmt: skip
        crotch = bottom + [0, 0.12 * identity.leg_fraction * identity.height * s]
        c.paint(_polygon([bottom + [-narrow, 0], bottom + [narrow, 0], crotch + [narrow * 0.8, 0],
                          crotch + [-narrow * 0.8, 0]]), lower)  # fmt: skip

    parts.append((0.0, torso))
    for name in ("left", "right"):
        hip, knee, ankle = (joints[f"{name}_{j}"] for j in ("hip", "knee", "ankle"))
        shoulder, elbow, wrist = (joints[f"{name}_{j}"] for j in ("shoulder", "elbow", "wrist"))

        def leg(c: _Canvas, hip=p[f"{name}_hip"], knee=p[f"{name}_knee"], ankle=p[f"{name}_ankle"],
                toe=p[f"{name}_toe"]) -> None:  # fmt: skip
            width = identity.limb * 1.35 * s
            if identity.shorts:
                c.paint(_stroke([(hip + knee) / 2, knee, ankle], width * 0.8), identity.skin)
                c.paint(_stroke([hip, hip + (knee - hip) * 0.6], width * 1.1), lower)
            else:
                c.paint(_stroke([hip, knee, ankle], width), lower)
            foot = (ankle + toe) / 2
            c.paint(
                _ellipse(foot, (1.4 * s + abs(ankle[0] - toe[0]) * 0.7, 1.6 * s)), identity.shoes
            )

        def arm(c: _Canvas, shoulder=p[f"{name}_shoulder"], elbow=p[f"{name}_elbow"],
                wrist=p[f"{name}_wrist"]) -> None:  # fmt: skip
            width = identity.limb * s
            c.paint(_stroke([shoulder, elbow, wrist], width), identity.skin)
            cuff = elbow if identity.short_sleeves else wrist - (wrist - elbow) * 0.15
            sleeve_points = [shoulder, elbow] if identity.short_sleeves else [shoulder, elbow, cuff]
            c.paint(_stroke(sleeve_points, width + (0.8 if identity.short_sleeves else 0)), sleeve)

        leg_depth = np.mean([project.depth(j) for j in (hip, knee, ankle)])
        arm_depth = np.mean([project.depth(j) for j in (shoulder, elbow, wrist)])
        parts += [(leg_depth - 0.5, leg), (arm_depth, arm)]
    if identity.bag == "backpack":
        center = np.array([0.0, (joints["neck"][1] + lower_origin[1]) / 2, -identity.depth - 2])

        def backpack(c: _Canvas) -> None:
            mid = project(center)
            half = project.width(identity.shoulder * 0.75, 2.5)
            tall = 0.3 * (lower_origin[1] - joints["neck"][1]) * s
            c.paint(_polygon([mid + [-half, -tall], mid + [half, -tall], mid + [half, tall], mid + [-half, tall]]),
                    identity.bag_color)  # fmt: skip

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
    parts += _head_parts(identity, pose, joints, project)
    return parts


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
    """Keypoints outside the image or under an occluder (coverage >= 0.5) become NaN, score 0."""
    for k, (x, y, score) in enumerate(keypoints):
        if score == 0:
            continue
        col, row = int(np.floor(x)), int(np.floor(y))
        if not (0 <= col < WIDTH and 0 <= row < HEIGHT) or cover[row, col] >= 0.5:
            keypoints[k] = (np.nan, np.nan, 0.0)


def render_person(
    identity: Identity,
    camera: Camera,
    rng: np.random.Generator,
    foreign: list[Clothing],
    occlusion: float,
    pose: Pose | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image of ``identity`` seen by ``camera``, in ``pose`` (default: drawn from ``rng``).

    Returns:
        image: uint8 (128, 64, 3) RGB; mask: float32 (128, 64) person coverage in [0, 1]
        without the occluded pixels; keypoints: float32 (17, 3) x, y, score (NaN, NaN, 0 when
        hidden by the occluder, outside the image or a face point on the far side of the head).
    """
    canvas = _Canvas(draw_background(rng, camera, foreign))
    pose = Pose.draw(rng, identity) if pose is None else pose
    joints = skeleton(identity, pose)
    project = _Projector(pose)
    for _, draw in sorted(_body_parts(identity, pose, joints, project), key=lambda part: part[0]):
        draw(canvas)
    mask = canvas.layer.astype(np.float32) / 255.0
    keypoints = _keypoints(joints, identity, project)
    cover = np.zeros_like(mask)
    if rng.random() < occlusion:
        cover = occlude(canvas.image, rng, camera, foreign)
        mask *= 1.0 - cover
    _hide(keypoints, cover)
    return apply_camera(canvas.image, rng, camera), mask, keypoints.astype(np.float32)


def render_scene(camera: Camera, rng: np.random.Generator, foreign: list[Clothing]) -> np.ndarray:
    """uint8 (128, 64, 3) RGB background without a person (Market-1501's junk boxes)."""
    return apply_camera(draw_background(rng, camera, foreign), rng, camera)
