"""Commands ``daaf embed`` (features of any images into an HDF5 file) and ``daaf search``
(nearest gallery images of query images or embeddings)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from daaf.errors import DaafError
from daaf.evaluation.commands import _SeveralFolders
from daaf.utils.options import (
    TOP,
    batch_size_option,
    model_option,
    out_dir_option,
    out_file_option,
    root_option,
    workers_option,
)

if TYPE_CHECKING:
    import numpy as np

    from daaf.inference.embedder import Embedder

MODEL_HELP = "Export folder, model_state.pt, or a training checkpoint (as `daaf evaluate`)."
LISTED = 20  # unreadable images printed at the end of `daaf embed`
SEARCH_KIND = "`daaf search` output"  # the kind of daaf's marker in its --out


class _EmbedArgs(_SeveralFolders):
    several = ("--images",)


class _SearchArgs(_SeveralFolders):
    several = ("--query",)


@click.command("embed", cls=_EmbedArgs)
@model_option(MODEL_HELP)
@click.option(
    "--images",
    "images",
    multiple=True,
    required=True,
    metavar="PATH [PATH ...]",
    help="Folders (searched recursively), image files, or text lists of images.",
)
@out_file_option("The HDF5 file to write (docs/embeddings.md).")
@click.option(
    "--resume", is_flag=True, help="Continue an interrupted --out after its last complete chunk."
)
@click.option(
    "--flip", is_flag=True, default=None, help="Average each embedding with its mirror image's."
)
@batch_size_option(64)
@workers_option()
@click.option("--device", default="auto", show_default=True)
def embed(model_path, images, out_path, resume, flip, batch_size, workers, device) -> None:
    """Embeddings of every image of folders, files and lists, written batch by batch to one
    HDF5 file: features, paths, unreadable images, and the model's SHA-256, dimension and input
    size. Unreadable images are listed and skipped; exit 1 only if none could be read."""
    from daaf.inference.embedder import Embedder
    from daaf.utils.files import check_output_path, printable

    check_output_path(out_path, folder=False)
    embedder = Embedder(model_path, device, batch_size, workers, flip)
    report = embedder.embed_folder(list(images), out_path, resume=resume)
    unreadable = report.unreadable
    for path, reason in unreadable[:LISTED]:
        click.echo(f"unreadable: {printable(path)} ({printable(reason)})")
    if len(unreadable) > LISTED:
        listed = f" (listed in {out_path})" if report.rows else ""
        click.echo(f"... and {len(unreadable) - LISTED} more unreadable{listed}")
    if report.rows == 0:
        raise DaafError(
            f"none of the {len(unreadable)} image(s) could be read; nothing embedded, no file written"
        )
    resumed = f", resumed after {report.resumed_from} image(s)" if report.resumed_from else ""
    click.echo(
        f"written: {out_path}: {report.rows} embeddings of dimension {embedder.dim}"
        f"{resumed}, {len(unreadable)} unreadable image(s)"
    )


def _queries(sources: tuple[str, ...], embedder: Embedder) -> tuple[list[Path], np.ndarray]:
    """Query image paths and their embeddings from images (embedded now) and embedding files."""
    import numpy as np

    from daaf.inference.inputs import list_images
    from daaf.inference.search import check_same_model
    from daaf.inference.store import read_embeddings

    paths, feats = [], []
    for source in sources:
        if Path(source).suffix.lower() in (".h5", ".hdf5"):
            stored = read_embeddings(Path(source))
            check_same_model(stored.attrs, embedder.sha256, embedder.dim, source)
            if not stored.paths:
                raise DaafError(f"{source}: holds no embeddings (none of its images could be read)")
            if bool(stored.attrs.get("flip", False)) != embedder.flip:
                raise DaafError(
                    f"{source}: embedded {'with' if stored.attrs.get('flip') else 'without'} --flip, "
                    f"the gallery {'with' if embedder.flip else 'without'}: embed both alike"
                )
            paths += [stored.full_path(i) for i in range(len(stored.paths))]
            feats.append(stored.features)
        else:
            images = list_images([source])
            paths += images
            feats.append(embedder.embed(images))  # an unreadable query image is an error
    return paths, np.concatenate(feats)


@click.command("search", cls=_SearchArgs)
@click.option(
    "--gallery",
    required=True,
    type=click.Path(dir_okay=False),
    help="Embedding file of the gallery (`daaf embed`).",
)
@click.option(
    "--query",
    "queries",
    multiple=True,
    required=True,
    metavar="IMAGE|FEATS.h5 [...]",
    help="Query images (files, folders, lists) or embedding files.",
)
@model_option(MODEL_HELP)
@click.option("--top", default=10, show_default=True, type=TOP, help="Gallery images per query.")
@click.option(
    "--rerank",
    is_flag=True,
    help="k-reciprocal re-ranking of each query's 100 nearest (k1=20, k2=6, lambda=0.3).",
)
@click.option(
    "--metric",
    type=click.Choice(["euclidean", "cosine"]),
    default=None,
    help="Distance (default: the model's, as `daaf evaluate`).",
)
@click.option(
    "--pids",
    "pids_dataset",
    default=None,
    metavar="DATASET",
    help="Mark true and false matches with this dataset's identities (needs --root).",
)
@root_option("The --pids dataset's root.", required=False)
@click.option("--device", default="auto", show_default=True)
@out_dir_option(required=True)
def search(
    gallery, queries, model_path, top, rerank, metric, pids_dataset, root, device, out_dir
) -> None:
    """The --top nearest gallery images of each query: results.csv (query, rank, gallery_path,
    distance) and one rank-list picture per query in OUT/ranklists/. The gallery is read in
    blocks of 8,192 rows, so its size is bounded by the disk, not the memory."""
    from daaf.evaluation.evaluate import model_label
    from daaf.inference.embedder import Embedder
    from daaf.inference.results import (
        check_identities_found,
        dataset_identities,
        write_results,
    )
    from daaf.inference.search import check_same_model, gallery_subset, search_file
    from daaf.inference.store import read_attrs
    from daaf.utils.files import check_output_dir, marked_output

    check_output_dir(out_dir, SEARCH_KIND)
    if top < 1:
        raise DaafError(f"--top must be at least 1, got {top}")
    if pids_dataset and not root:
        raise DaafError("--pids needs --root, the dataset's root folder")
    attrs = read_attrs(Path(gallery))
    embedder = Embedder(
        model_path, device, flip=bool(attrs.get("flip", False))
    )  # queries as the gallery
    check_same_model(attrs, embedder.sha256, embedder.dim, gallery)
    identities = dataset_identities(pids_dataset, root) if pids_dataset else None
    query_paths, q_feats = _queries(queries, embedder)
    metric = metric or attrs.get("metric", "euclidean")
    distances, indices = search_file(q_feats, Path(gallery), top, metric, rerank)
    found = gallery_subset(Path(gallery), indices)
    items = [found.full_path(i) for i in range(len(found.paths))]
    unknown = identities and check_identities_found(identities, query_paths, items, pids_dataset)
    if unknown:
        click.echo(
            f"warning: {unknown} of {len(query_paths)} queries are no images of {pids_dataset} "
            "under --root: their matches are left blank",
            err=True,
        )
    ranking = "re-ranked" if rerank else metric
    with marked_output(out_dir, SEARCH_KIND):
        path = write_results(
            Path(out_dir),
            query_paths,
            items,
            distances,
            indices,
            identities,
            label=f"{model_label(Path(model_path))}, {ranking}",
        )
    click.echo(
        f"written: {path} ({len(query_paths)} queries x top {indices.shape[1]}, {ranking} "
        f"distances) and {Path(out_dir) / 'ranklists'}/ ({len(query_paths)} pictures)"
    )
