#!/usr/bin/env bash
# One-command setup: real Fashion-MNIST from Debian's package (when apt is there) and jaxae with
# its test tools. Usage: bash setup.sh            (add `bench` to also install the PyTorch reference)
set -euo pipefail
cd "$(dirname "$0")"

if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
  echo "Installing Fashion-MNIST (Debian package dataset-fashion-mnist)..."
  if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null; }; then
    echo "warning: could not install dataset-fashion-mnist; tests still run on synthetic data." >&2
  fi
fi

extras="dev"
[ "${1:-}" = "bench" ] && extras="dev,bench"
python -m pip install -q -e ".[${extras}]"
echo "jaxae is installed. Train:  python train.py --config configs/conv_deep.py --workdir runs/conv_deep"
