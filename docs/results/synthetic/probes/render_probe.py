"""Side by side: image with its keypoints, the target heatmaps (max over 17) and the PAB output."""
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

names = sys.argv[2:]
fig, axes = plt.subplots(1, 2 + len(names), figsize=(2.2 * (2 + len(names)), 3.6))
first = torch.load(f"/work/study/probe_{names[0]}.pt")
img, kps = first["images"][0].numpy(), first["kps"][0].numpy()
axes[0].imshow(img)
vis = kps[:, 2] > 0
axes[0].scatter(kps[vis, 0], kps[vis, 1], s=8, c="r")
axes[0].set_title("input + keypoints\n(map pixels)", fontsize=8)
t = first["heat"][0].max(0).values.numpy()
im = axes[1].imshow(t, vmin=0, vmax=1, cmap="magma")
axes[1].set_title(f"target, max over 17\n{tuple(first['heat'].shape[-2:])}", fontsize=8)
for ax, name in zip(axes[2:], names):
    p = torch.load(f"/work/study/probe_{name}.pt")["parts"][0]
    m = p.max(0).values.numpy()
    ax.imshow(m, vmin=0, vmax=1, cmap="magma")
    ax.set_title(f"{name}\npeak {m.max():.2f}, {tuple(p.shape[-2:])}", fontsize=8)
for ax in axes:
    ax.axis("off")
fig.colorbar(im, ax=axes, shrink=0.6)
fig.savefig(sys.argv[1], dpi=80)
