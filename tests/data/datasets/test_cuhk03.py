"""CUHK03 from a tiny MATLAB v7.3 ``cuhk-03.mat`` (HDF5) plus v5 protocol files, and CUHK03-NP."""

import cv2
import h5py
import numpy as np
import pytest
from scipy.io import savemat

from daaf.data.datasets import Sample, build_dataset
from daaf.errors import DaafError

# Camera pairs -> identities -> which of the 10 image cells hold an image (1-based;
# images 1-5 come from the pair's first camera, 6-10 from its second).
PAIRS = [
    [(1, 2, 6), (1, 6, 7), (1, 6)],  # pair 1: identities 1-3
    [(1, 6), (2, 7)],  # pair 2: identities 1-2
]


def image_for(kind, pair, pid, index):
    """A distinct 6x4 RGB image per cell (H, W, 3)."""
    value = (kind == "detected") * 100 + pair * 30 + pid * 10 + index
    image = np.zeros((6, 4, 3), np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = value, 255 - value, index
    return image


def write_cuhk03_mat(path):
    """Mimic MATLAB v7.3: cells are datasets of object references, arrays stored transposed."""
    path.parent.mkdir(parents=True)
    with h5py.File(path, "w") as f:
        refs = f.create_group("#refs#")

        def store(data):
            name = str(len(refs))
            refs.create_dataset(name, data=data)
            return refs[name].ref

        for kind in ("labeled", "detected"):
            pair_refs = []
            for pair, identities in enumerate(PAIRS, start=1):
                cells = np.empty((len(identities), 10), dtype=h5py.ref_dtype)
                for pid, present in enumerate(identities, start=1):
                    for index in range(1, 11):
                        # MATLAB writes an empty cell as its dims, a 1-D uint64 array.
                        data = (
                            image_for(kind, pair, pid, index).T
                            if index in present
                            else np.zeros(2, np.uint64)
                        )
                        cells[pid - 1, index - 1] = store(data)
                pair_refs.append(store(cells.T))
            f.create_dataset(
                kind, data=np.array([pair_refs], dtype=h5py.ref_dtype)
            )  # 5x1 cell -> (1, 5)
        f.create_dataset("testsets", data=np.zeros((1, 1)))


def column(values):
    """A MATLAB column vector (doubles, as in the real protocol files)."""
    return np.array(values, dtype=np.float64).reshape(-1, 1)


def write_protocol(path, entries, train, query, gallery):
    """``entries``: (file name, pid); split lists hold 1-based indices into them, as in the real files."""
    filelist = np.empty((len(entries), 1), dtype=object)
    for i, (name, _) in enumerate(entries):
        filelist[i, 0] = name
    savemat(
        path,
        {
            "filelist": filelist,
            "labels": column([pid for _, pid in entries]),
            "camId": column(
                [int(name.split("_")[2]) if name[0].isdigit() else 1 for name, _ in entries]
            ),
            "train_idx": column(train),
            "query_idx": column(query),
            "gallery_idx": column(gallery),
        },
    )


# Global ids: pair 1 identities 1-3 -> 1-3; pair 2 identities 1-2 -> 4-5.
LABELED = [
    ("1_001_1_01.png", 1),  # 1  train
    ("1_001_1_02.png", 1),  # 2  train
    ("1_001_2_06.png", 1),  # 3  train
    ("2_002_1_02.png", 5),  # 4  train
    ("2_002_2_07.png", 5),  # 5  train
    ("1_002_1_01.png", 2),  # 6  query
    ("1_002_2_06.png", 2),  # 7  gallery
    ("1_002_2_07.png", 2),  # 8  gallery
    ("1_003_1_01.png", 3),  # 9  query
    ("1_003_2_06.png", 3),  # 10 gallery
    ("1_003_1_02.png", 3),  # 11 gallery: an empty cell, so never extracted
    ("junk.png", 3),  # 12 gallery: name does not parse
]


@pytest.fixture
def cuhk03_root(tmp_path):
    cuhk03 = tmp_path / "cuhk03"
    write_cuhk03_mat(cuhk03 / "cuhk03_release" / "cuhk-03.mat")
    write_protocol(
        cuhk03 / "cuhk03_new_protocol_config_labeled.mat",
        LABELED,
        train=[1, 2, 3, 4, 5],
        query=[6, 9],
        gallery=[7, 8, 10, 11, 12],
    )
    detected = [
        ("1_001_1_01.png", 1),
        ("2_001_2_06.png", 4),
        ("1_002_1_01.png", 2),
        ("1_002_2_06.png", 2),
    ]
    write_protocol(
        cuhk03 / "cuhk03_new_protocol_config_detected.mat",
        detected,
        train=[1, 2],
        query=[3],
        gallery=[4],
    )
    return tmp_path


def test_labeled_new_protocol(cuhk03_root):
    dataset = build_dataset("cuhk03_labeled", cuhk03_root)
    cuhk03 = cuhk03_root / "cuhk03"
    assert dataset.image_dir == cuhk03
    # Train ids 1 and 5 relabelled to 0 and 1; camera = view - 1.
    assert dataset.train == [
        Sample("images_labeled/1_001_1_01.png", 0, 0),
        Sample("images_labeled/1_001_1_02.png", 0, 0),
        Sample("images_labeled/1_001_2_06.png", 0, 1),
        Sample("images_labeled/2_002_1_02.png", 1, 0),
        Sample("images_labeled/2_002_2_07.png", 1, 1),
    ]
    assert dataset.query == [
        Sample("images_labeled/1_002_1_01.png", 2, 0),
        Sample("images_labeled/1_003_1_01.png", 3, 0),
    ]
    assert dataset.gallery == [
        Sample("images_labeled/1_002_2_06.png", 2, 1),
        Sample("images_labeled/1_002_2_07.png", 2, 1),
        Sample("images_labeled/1_003_2_06.png", 3, 1),
    ]
    assert dataset.skipped == {
        "listed in cuhk03_new_protocol_config_labeled.mat but missing": [
            "images_labeled/1_003_1_02.png"
        ],
        "file name does not parse": ["images_labeled/junk.png"],
    }
    # Every non-empty labeled cell was extracted, with its pixels (RGB on disk as PNG).
    extracted = sorted(p.name for p in (cuhk03 / "images_labeled").iterdir())
    assert len(extracted) == sum(len(present) for identities in PAIRS for present in identities)
    assert "1_003_1_02.png" not in extracted and "2_002_2_07.png" in extracted
    image = cv2.imread(str(cuhk03 / "images_labeled" / "2_002_2_07.png"))[:, :, ::-1]
    np.testing.assert_array_equal(image, image_for("labeled", 2, 2, 7))
    assert not (cuhk03 / "images_detected").exists()
    assert not (cuhk03 / "images_labeled.partial").exists()


def test_extraction_is_reused(cuhk03_root):
    first = build_dataset("cuhk03_labeled", cuhk03_root)
    (cuhk03_root / "cuhk03" / "cuhk03_release" / "cuhk-03.mat").write_bytes(b"no longer read")
    second = build_dataset("cuhk03_labeled", cuhk03_root / "cuhk03")  # ROOT = the cuhk03 folder
    assert (second.train, second.query, second.gallery) == (first.train, first.query, first.gallery)


def test_detected(cuhk03_root):
    dataset = build_dataset("cuhk03_detected", cuhk03_root)
    assert dataset.summary() == {
        "train": {"images": 2, "ids": 2, "cameras": 2},
        "query": {"images": 1, "ids": 1, "cameras": 1},
        "gallery": {"images": 1, "ids": 1, "cameras": 1},
    }
    image = cv2.imread(str(cuhk03_root / "cuhk03" / "images_detected" / "2_001_2_06.png"))[
        :, :, ::-1
    ]
    np.testing.assert_array_equal(image, image_for("detected", 2, 1, 6))


def test_not_a_v73_mat_file(cuhk03_root):
    (cuhk03_root / "cuhk03" / "cuhk03_release" / "cuhk-03.mat").write_bytes(b"MATLAB 5.0 MAT-file")
    with pytest.raises(
        DaafError, match=r"cuhk-03.mat: cannot be read as a MATLAB v7.3 \(HDF5\) file"
    ):
        build_dataset("cuhk03_labeled", cuhk03_root)


def test_cuhk03_np_layout(tmp_path, write_images):
    labeled = tmp_path / "cuhk03-np" / "labeled"
    write_images(
        labeled / "bounding_box_train", ["0001_c1_1.png", "0001_c2_2.png", "0003_c1_1.png"]
    )
    write_images(labeled / "query", ["0002_c1_1.png"])
    write_images(
        labeled / "bounding_box_test", ["0002_c2_1.png", "0002_c2_2.png", "1_001_1_01.png"]
    )
    dataset = build_dataset("cuhk03_labeled", tmp_path)
    assert dataset.image_dir == labeled
    assert [(s.pid, s.camid) for s in dataset.train] == [(0, 0), (0, 1), (1, 0)]
    assert dataset.query == [Sample("query/0002_c1_1.png", 2, 0)]
    assert dataset.skipped == {"file name does not parse": ["bounding_box_test/1_001_1_01.png"]}
    assert build_dataset("cuhk03_labeled", tmp_path / "cuhk03-np").train == dataset.train
    with pytest.raises(DaafError, match="cuhk03-np/detected"):
        build_dataset("cuhk03_detected", tmp_path)


def test_missing_files_name_both_layouts(tmp_path):
    (tmp_path / "cuhk03" / "cuhk03_release").mkdir(parents=True)
    with pytest.raises(DaafError) as error:
        build_dataset("cuhk03_labeled", tmp_path)
    message = str(error.value)
    assert (
        "cuhk03_release/cuhk-03.mat, cuhk03_new_protocol_config_labeled.mat in ROOT/cuhk03"
        in message
    )
    assert "bounding_box_train, query, bounding_box_test in ROOT/cuhk03-np/labeled" in message
    assert f"in {tmp_path / 'cuhk03'}: cuhk03_release/" in message
