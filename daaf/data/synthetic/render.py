"""Drawing one synthetic pedestrian: identity appearance, pose, camera, exact mask and keypoints.

An identity is only its appearance (body proportions, clothing colours and patterns, hair,
shoes, bag); an image adds a walking pose, a viewpoint, a position jitter, a cluttered
background and the camera's lighting. Nothing but the person identifies the person: every
camera draws its clutter from the same process, and some clutter takes the colours of other
identities' clothes. Keypoints follow COCO: "left" is the person's left.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

HEIGHT, WIDTH = 128, 64
PATTERNS = ("solid", "hstripes", "vstripes", "checks", "twotone")
VIEWS = ("front", "back", "left", "right")  # "left": facing the image's left
SKIN = np.array([[224, 172, 140], [198, 134, 66], [141, 85, 36], [255, 219, 172], [170, 120, 90]])
AA = cv2.LINE_AA


def _color(rng: np.random.Generator) -> np.ndarray:
    """A clothing colour: any hue, often saturated, sometimes dark or greyish."""
    hsv = np.array(
        [[[rng.integers(0, 180), rng.integers(40, 256), rng.integers(50, 256)]]], np.uint8
    )
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float64)


@dataclass
class Identity:
    """Everything that makes one person recognisable (drawn once per pid)."""

    body_height: float
    head_radius: float
    shoulder: float  # half width in pixels
    hip: float
    leg_fraction: float
    limb: float  # limb thickness
    skin: np.ndarray
    hair: np.ndarray
    long_hair: bool
    upper: tuple[np.ndarray, np.ndarray, str, int]  # colour, second colour, pattern, period
    lower: tuple[np.ndarray, np.ndarray, str, int]
    short_sleeves: bool
    shorts: bool
    shoes: np.ndarray
    bag: str  # none | backpack | shoulder
    bag_color: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Identity:
        def clothing() -> tuple[np.ndarray, np.ndarray, str, int]:
            return _color(rng), _color(rng), str(rng.choice(PATTERNS)), int(rng.integers(3, 7))

        return cls(
            body_height=rng.uniform(96, 118), head_radius=rng.uniform(6, 8.5),
            shoulder=rng.uniform(8, 12.5), hip=rng.uniform(5.5, 9), leg_fraction=rng.uniform(0.44, 0.52),
            limb=rng.uniform(3, 5.5), skin=SKIN[rng.integers(len(SKIN))].astype(np.float64),
            hair=_color(rng) * rng.uniform(0.2, 0.8), long_hair=bool(rng.random() < 0.4),
            upper=clothing(), lower=clothing(), short_sleeves=bool(rng.random() < 0.4),
            shorts=bool(rng.random() < 0.3), shoes=_color(rng) * rng.uniform(0.3, 1.0),
            bag=str(rng.choice(["none", "backpack", "shoulder"], p=[0.5, 0.25, 0.25])), bag_color=_color(rng),
        )  # fmt: skip

    def colors(self) -> list[np.ndarray]:
        return [self.upper[0], self.upper[1], self.lower[0], self.lower[1], self.bag_color]


@dataclass
class Camera:
    """What a camera does to every image: palette of its scene, lighting, noise and blur."""

    palette: np.ndarray  # (4, 3) wall/floor/object colours
    gain: float
    cast: np.ndarray  # per-channel multipliers
    noise: float
    blur: bool

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Camera:
        return cls(
            palette=np.stack([_color(rng) * rng.uniform(0.4, 1.0) for _ in range(4)]),
            gain=rng.uniform(0.75, 1.2), cast=rng.uniform(0.85, 1.15, 3), noise=rng.uniform(2, 7),
            blur=bool(rng.random() < 0.5),
        )  # fmt: skip


def _pattern(
    spec: tuple[np.ndarray, np.ndarray, str, int], origin: tuple[float, float]
) -> np.ndarray:
    """A full-canvas texture of a clothing spec, anchored at the body so it moves with it."""
    color, second, kind, period = spec
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
    ys, xs = ys - origin[1], xs - origin[0]
    if kind == "hstripes":
        use = (ys // period) % 2 == 0
    elif kind == "vstripes":
        use = (xs // period) % 2 == 0
    elif kind == "checks":
        use = ((ys // period) + (xs // period)) % 2 == 0
    elif kind == "twotone":
        use = ys < period * 2
    else:
        use = np.ones_like(ys, bool)
    return np.where(use[..., None], color, second)


def _background(rng: np.random.Generator, camera: Camera, others: list[np.ndarray]) -> np.ndarray:
    """Wall and floor in the camera's palette, then random clutter; some in other people's colours."""
    image = np.empty((HEIGHT, WIDTH, 3))
    horizon = int(rng.integers(60, 100))
    image[:horizon] = camera.palette[0]
    image[horizon:] = camera.palette[1]
    for _ in range(int(rng.integers(6, 14))):
        color = (
            others[rng.integers(len(others))]
            if rng.random() < 0.3
            else camera.palette[rng.integers(4)]
        )
        color = np.clip(color * rng.uniform(0.7, 1.3), 0, 255).tolist()
        x, y = int(rng.integers(-10, WIDTH + 10)), int(rng.integers(-10, HEIGHT + 10))
        kind = rng.integers(5)
        if kind == 4:  # a patterned patch (a poster, a tiled wall): clothing-like textures
            w, h = int(rng.integers(8, 30)), int(rng.integers(8, 40))
            second = camera.palette[rng.integers(4)].tolist()
            spec = (
                np.array(color),
                np.array(second),
                str(rng.choice(PATTERNS[1:])),
                int(rng.integers(2, 6)),
            )
            patch = _pattern(spec, (x, y))
            y0, y1, x0, x1 = max(y, 0), min(y + h, HEIGHT), max(x, 0), min(x + w, WIDTH)
            image[y0:y1, x0:x1] = patch[y0:y1, x0:x1]
        elif kind == 0:
            cv2.rectangle(
                image,
                (x, y),
                (x + int(rng.integers(4, 30)), y + int(rng.integers(4, 50))),
                color,
                -1,
            )
        elif kind == 1:
            cv2.circle(image, (x, y), int(rng.integers(3, 14)), color, -1, AA)
        elif kind == 2:
            end = (x + int(rng.integers(-40, 40)), y + int(rng.integers(-40, 40)))
            cv2.line(image, (x, y), end, color, int(rng.integers(1, 4)), AA)
        else:
            pts = np.stack([rng.integers(-10, WIDTH + 10, 3), rng.integers(-10, HEIGHT + 10, 3)], 1)
            cv2.fillPoly(image, [pts.astype(np.int32)], color, AA)
    return image


def _limb(canvas: np.ndarray, layer: np.ndarray, points: list, width: float, color) -> None:
    """A thick polyline on the image and on the person layer."""
    pts = [tuple(int(round(v * 4)) for v in p) for p in points]  # 2 fractional bits
    w = max(1, int(round(width)))
    for a, b in zip(pts[:-1], pts[1:], strict=True):
        cv2.line(
            canvas,
            a,
            b,
            color if not isinstance(color, np.ndarray) else color.tolist(),
            w,
            AA,
            shift=2,
        )
        cv2.line(layer, a, b, 255, w, AA, shift=2)


def _poly(canvas: np.ndarray, layer: np.ndarray, points: np.ndarray, texture: np.ndarray) -> None:
    """A filled polygon whose colours come from ``texture`` (the clothing pattern)."""
    region = np.zeros((HEIGHT, WIDTH), np.uint8)
    cv2.fillPoly(region, [np.round(points * 4).astype(np.int32)], 255, AA, shift=2)
    alpha = region[..., None] / 255.0
    canvas[:] = canvas * (1 - alpha) + texture * alpha
    np.maximum(layer, region, out=layer)


def render(
    identity: Identity,
    camera: Camera,
    rng: np.random.Generator,
    others: list[np.ndarray],
    occlusion: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """uint8 (128, 64, 3) RGB image, float32 (128, 64) person mask, float32 (17, 3) keypoints."""
    image = _background(rng, camera, others)
    layer = np.zeros((HEIGHT, WIDTH), np.uint8)
    view = VIEWS[rng.integers(4)]
    scale = rng.uniform(0.93, 1.05)
    body = identity.body_height * scale
    cx = WIDTH / 2 + rng.uniform(-4, 4)
    top = (HEIGHT - body) / 2 + rng.uniform(-4, 4)
    r = identity.head_radius * scale
    head = np.array([cx, top + r])
    leg = body * identity.leg_fraction
    hip_y = top + body - leg
    sh_y = top + 2 * r + 3 * scale
    side = view in ("left", "right")
    facing = -1 if view == "left" else 1  # image-x direction the face points in side views
    # x offset of the person's left side: image right when facing the camera, image left from
    # the back; in side views both sides overlap (facing the image's left shows the left side).
    lateral = {"front": 1.0, "back": -1.0, "left": 0.3, "right": -0.3}[view]
    swing = rng.uniform(0.15, 0.45) * np.sin(rng.uniform(0, 2 * np.pi))  # gait phase
    kps = np.full((17, 3), np.nan)

    def joint(base, length, angle, depth=0.0):
        """A limb end; ``depth``: swing towards/away from the camera, seen foreshortened."""
        return base + length * np.array([np.sin(angle), np.cos(angle) * np.cos(depth)])

    shoulders, hips, limbs = {}, {}, {}
    for s in (1, -1):  # s = +1: the person's left
        shoulders[s] = np.array([cx + s * lateral * identity.shoulder * scale, sh_y])
        hips[s] = np.array([cx + s * lateral * identity.hip * scale, hip_y])
        # Side views swing the limbs in the image plane; front and back views see the same
        # swing in depth: shorter limbs, and the knee of the leg behind bends more.
        depth = 0.0 if side else s * swing
        leg_angle = s * swing * facing if side else s * lateral * 0.06
        knee = joint(hips[s], leg * 0.5, leg_angle, depth)
        shin = leg_angle - abs(swing) * 0.5 * facing if side else leg_angle
        ankle = joint(knee, leg * 0.5, shin, depth * (1.5 if depth < 0 else 1.0))
        arm_angle = -s * swing * facing if side else s * lateral * 0.15
        upper_arm = (hip_y - sh_y) * 0.55
        elbow = joint(shoulders[s], upper_arm, arm_angle, -depth)
        wrist = joint(
            elbow, upper_arm * 0.9, arm_angle + (0.3 * facing if side else 0), -1.5 * depth
        )
        limbs[s] = (knee, ankle, elbow, wrist)
        i = 0 if s == 1 else 1  # COCO: left before right
        kps[5 + i, :2], kps[7 + i, :2], kps[9 + i, :2] = shoulders[s], elbow, wrist
        kps[11 + i, :2], kps[13 + i, :2], kps[15 + i, :2] = hips[s], knee, ankle
    kps[:, 2] = 1.0
    _face_keypoints(kps, head, r, view, facing)

    upper_tex = _pattern(identity.upper, (cx, sh_y))
    lower_tex = _pattern(identity.lower, (cx, hip_y))
    sleeve = identity.skin if identity.short_sleeves else identity.upper[0]
    far, near = (1, -1) if view == "right" else (-1, 1)
    half = max(abs(lateral), 0.55) * identity.shoulder * scale
    if identity.bag == "backpack" and side:  # on the back, behind the body
        back = cx - facing * half
        _box(image, layer, (back - facing * 8, sh_y + 2), (back, hip_y - 4), identity.bag_color)
    for s in (far, "torso", near):
        if s == "torso":
            torso = np.array([[cx - half, sh_y - 1], [cx + half, sh_y - 1],
                              [cx + max(abs(lateral), 0.6) * identity.hip * scale, hip_y],
                              [cx - max(abs(lateral), 0.6) * identity.hip * scale, hip_y]])  # fmt: skip
            _poly(image, layer, torso, upper_tex)
            if identity.bag == "backpack" and view == "back":
                _box(
                    image,
                    layer,
                    (cx - half + 2, sh_y + 3),
                    (cx + half - 2, hip_y - 3),
                    identity.bag_color,
                )
            continue
        knee, ankle, elbow, wrist = limbs[s]
        _draw_leg(image, layer, identity, hips[s], knee, ankle, lower_tex)
        _limb(image, layer, [shoulders[s], elbow, wrist], identity.limb * scale, sleeve)
    if identity.bag == "shoulder":
        bag_x = cx + (half + 3) * (1 if view != "left" else -1)
        _box(image, layer, (bag_x - 4, hip_y - 8), (bag_x + 4, hip_y + 4), identity.bag_color)
    # Neck, head, hair.
    _limb(image, layer, [head + [0, r * 0.8], [cx, sh_y + 1]], 4 * scale, identity.skin)
    cv2.circle(
        image,
        tuple(int(round(v * 4)) for v in head),
        int(r * 4),
        identity.skin.tolist(),
        -1,
        AA,
        shift=2,
    )
    cv2.circle(layer, tuple(int(round(v * 4)) for v in head), int(r * 4), 255, -1, AA, shift=2)
    hair_axes = (
        int(r * 4.2),
        int(r * (4.6 if identity.long_hair else 2.6) * (1.6 if view == "back" else 1)),
    )
    hair_center = head + [0, -0.3 * r if view != "back" else 0.2 * r]
    cv2.ellipse(image, tuple(int(round(v * 4)) for v in hair_center), hair_axes, 0, 180 if view != "back" else 0, 360,
                identity.hair.tolist(), -1, AA, shift=2)  # fmt: skip
    cv2.ellipse(layer, tuple(int(round(v * 4)) for v in hair_center), hair_axes, 0, 180 if view != "back" else 0, 360,
                255, -1, AA, shift=2)  # fmt: skip
    mask = layer.astype(np.float32) / 255.0
    outside = ~((kps[:, 0] >= 0) & (kps[:, 0] < WIDTH) & (kps[:, 1] >= 0) & (kps[:, 1] < HEIGHT))
    kps[outside] = (np.nan, np.nan, 0)

    if rng.random() < occlusion:
        _occlude(image, mask, kps, rng, camera)
    image = image * camera.gain * camera.cast + rng.normal(0, camera.noise, image.shape)
    if camera.blur:
        image = cv2.GaussianBlur(image, (3, 3), 0.6)
    return np.clip(image, 0, 255).round().astype(np.uint8), mask, kps.astype(np.float32)


def _box(image, layer, corner1, corner2, color) -> None:
    p1, p2 = tuple(int(round(v)) for v in corner1), tuple(int(round(v)) for v in corner2)
    cv2.rectangle(image, p1, p2, color.tolist(), -1)
    cv2.rectangle(layer, p1, p2, 255, -1)


def _face_keypoints(kps: np.ndarray, head: np.ndarray, r: float, view: str, facing: int) -> None:
    """Nose, eyes, ears: only those on the visible side of the head."""
    eye_dx, ear_dx = 0.38 * r, 0.95 * r
    hidden = (np.nan, np.nan, 0)
    if view == "front":  # the person's left eye is on the image's right
        kps[0, :2] = head + [0, 0.25 * r]
        kps[1, :2], kps[2, :2] = head + [eye_dx, -0.1 * r], head + [-eye_dx, -0.1 * r]
        kps[3, :2], kps[4, :2] = head + [ear_dx, 0], head + [-ear_dx, 0]
    elif view == "back":
        kps[0:3] = hidden
        kps[3, :2], kps[4, :2] = head + [-ear_dx, 0], head + [ear_dx, 0]
    else:
        near = 0 if view == "left" else 1  # facing the image's left shows the person's left side
        kps[0, :2] = head + [facing * 0.9 * r, 0.2 * r]
        kps[1 + near, :2] = head + [facing * 0.55 * r, -0.1 * r]
        kps[3 + near, :2] = head + [-facing * 0.1 * r, 0]
        kps[2 - near] = hidden
        kps[4 - near] = hidden


def _draw_leg(image, layer, identity: Identity, hip, knee, ankle, texture) -> None:
    width = identity.limb * 1.3
    if identity.shorts:
        mid = (knee + hip) / 2
        _limb(image, layer, [mid, knee, ankle], width * 0.8, identity.skin)
        _limb_textured(image, layer, [hip, mid + (knee - hip) * 0.1], width, texture)
    else:
        _limb_textured(image, layer, [hip, knee, ankle], width, texture)
    foot = ankle + [0, 1.5]
    cv2.ellipse(
        image,
        tuple(int(v * 4) for v in foot),
        (12, 6),
        0,
        0,
        360,
        identity.shoes.tolist(),
        -1,
        AA,
        shift=2,
    )
    cv2.ellipse(layer, tuple(int(v * 4) for v in foot), (12, 6), 0, 0, 360, 255, -1, AA, shift=2)


def _limb_textured(image, layer, points, width, texture) -> None:
    region = np.zeros((HEIGHT, WIDTH), np.uint8)
    _limb(np.zeros((HEIGHT, WIDTH, 3)), region, points, width, (0, 0, 0))
    alpha = region[..., None] / 255.0
    image[:] = image * (1 - alpha) + texture * alpha
    np.maximum(layer, region, out=layer)


def _occlude(image, mask, kps, rng, camera: Camera) -> None:
    """A pole or box in front of the person: it hides pixels and keypoints under it."""
    region = np.zeros((HEIGHT, WIDTH), np.uint8)
    if rng.random() < 0.5:
        x = int(rng.integers(5, WIDTH - 15))
        cv2.rectangle(region, (x, 0), (x + int(rng.integers(8, 20)), HEIGHT), 255, -1)
    else:
        y = int(rng.integers(HEIGHT // 2, HEIGHT - 20))
        cv2.rectangle(region, (0, y), (WIDTH, HEIGHT), 255, -1)
    color = camera.palette[rng.integers(4)] * rng.uniform(0.6, 1.2)
    hidden = region > 0
    image[hidden] = color
    mask[hidden] = 0
    for k, (x, y, _) in enumerate(kps):
        if (
            np.isfinite(x)
            and hidden[int(np.clip(round(y), 0, HEIGHT - 1)), int(np.clip(round(x), 0, WIDTH - 1))]
        ):
            kps[k] = (np.nan, np.nan, 0)
