"""``import wgan``: a version, the main API by name, and no torch until it is used."""

import subprocess
import sys
from importlib.metadata import version

import wgan


def test_version_is_the_installed_distributions():
    assert wgan.__version__ == version("wgan")


def test_main_api_by_name():
    from wgan.config import resolve
    from wgan.training.run import load_run
    from wgan.training.train import train

    assert wgan.resolve is resolve and wgan.load_run is load_run and wgan.train_run is train
    for name in wgan.__all__:
        assert getattr(wgan, name) is not None, name


def test_import_wgan_does_not_load_torch():
    code = "import sys, wgan; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
