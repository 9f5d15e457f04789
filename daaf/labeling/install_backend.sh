#!/usr/bin/env bash
# Install an optional daaf labeling backend into the current Python environment, against the
# torch already installed there (daaf's own install comes first).
#
#   daaf install-backend detectron2 [--source DIR]   # DIR: a detectron2 checkout
#   daaf install-backend mmpose [--workdir DIR]      # DIR: mmcv's build (kept: resumes)
#
# `daaf install-backend` runs this file with PYTHON set to its own Python; run by hand, the
# Python used is $PYTHON, else `python` on PATH. detectron2 builds from --source, else from
# its git repository (needs network). mmpose needs full mmcv 2.1.0 compiled from source
# (mmcv-lite lacks the ops) with C++20, as recent PyTorch headers need. Both need
# pkg_resources at run time, so setuptools is pinned below 81.
set -euo pipefail

usage() {
    sed -n '5,6p' "$0" | sed 's/^# *//' >&2
    exit 2
}

[[ $# -ge 1 ]] || usage
backend=$1
shift
source_dir=""
workdir=""
while [[ $# -gt 0 ]]; do
    case $1 in
        --source) source_dir=${2:?--source needs a folder}; shift 2 ;;
        --workdir) workdir=${2:?--workdir needs a folder}; shift 2 ;;
        *) echo "daaf install-backend: unknown option $1" >&2; usage ;;
    esac
done
fail() { echo "daaf install-backend: $*" >&2; exit 1; }
case $backend in
    detectron2) [[ -z $workdir ]] || fail "--workdir is for mmpose" ;;
    mmpose) [[ -z $source_dir ]] || fail "--source is for detectron2" ;;
    *) echo "daaf install-backend: unknown backend '$backend' (detectron2 or mmpose)" >&2; usage ;;
esac
if [[ -n $source_dir && ! -f $source_dir/setup.py ]]; then
    fail "$source_dir has no setup.py (not a detectron2 checkout)"
fi

PYTHON=${PYTHON:-python}
pip() { "$PYTHON" -m pip "$@"; }
"$PYTHON" -c "import torch, daaf" 2>/dev/null ||
    fail "$PYTHON cannot import torch and daaf; install daaf first (pip install -e .)"
# detectron2's model zoo and mmengine import pkg_resources, which setuptools 81 removed.
pip install 'setuptools==80.10.2' wheel

case $backend in
    detectron2)
        if [[ -n $source_dir ]]; then
            # Not editable: setuptools 80's develop command would rebuild in an isolated
            # environment without torch.
            pip install --no-build-isolation "$source_dir"
        else
            pip install --no-build-isolation 'git+https://github.com/facebookresearch/detectron2.git'
        fi
        ;;
    mmpose)
        workdir=${workdir:-$(mktemp -d)}
        mkdir -p "$workdir"
        (
            cd "$workdir"
            [[ -f mmcv-2.1.0.tar.gz ]] || pip download --no-deps --no-binary :all: 'mmcv==2.1.0'
            # An interrupted build resumes: ninja keeps the objects already compiled here.
            [[ -d mmcv-2.1.0 ]] || tar xzf mmcv-2.1.0.tar.gz
            sed -i 's/-std=c++17/-std=c++20/' mmcv-2.1.0/setup.py
            pip install --no-build-isolation ./mmcv-2.1.0
        )
        pip install cython  # chumpy's and xtcocotools' builds import it, or pip, unisolated
        pip install --no-build-isolation chumpy
        pip install 'mmdet==3.2.0' 'mmpose==1.3.2'
        # The xtcocotools wheel on PyPI was built against numpy 1; rebuild it against numpy 2.
        pip install --force-reinstall --no-deps --no-build-isolation --no-binary xtcocotools xtcocotools
        ;;
esac
"$PYTHON" -c "import daaf.labeling as l; l.build_labeler('$backend', weights='random')" &&
    echo "daaf install-backend: $backend installed; try: daaf label --backend $backend --weights random"
