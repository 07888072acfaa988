"""Where compiled programs persist between processes, and how the backends are told."""

import os
import subprocess
import sys

from nanoseq.runtime import compile_cache, persist_compilations


def test_the_cache_is_named_by_nanoseq_cache_else_under_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("NANOSEQ_CACHE", str(tmp_path / "mine"))
    assert compile_cache() == tmp_path / "mine" and (tmp_path / "mine").is_dir()
    monkeypatch.delenv("NANOSEQ_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compile_cache() == tmp_path / "xdg/nanoseq"


def test_no_cache_when_off_or_unwritable(tmp_path, monkeypatch):
    monkeypatch.setenv("NANOSEQ_CACHE", "off")
    assert compile_cache() is None
    blocked = tmp_path / "file"
    blocked.write_text("")
    monkeypatch.setenv("NANOSEQ_CACHE", str(blocked / "cache"))  # under a file: cannot be made
    assert compile_cache() is None


def test_both_backends_are_told_and_a_users_own_settings_win(tmp_path, monkeypatch):
    monkeypatch.setenv("NANOSEQ_CACHE", str(tmp_path))
    monkeypatch.setenv("TF_XLA_FLAGS", "--tf_xla_auto_jit=0")
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", "/theirs")
    assert persist_compilations() == tmp_path
    assert os.environ["TF_XLA_FLAGS"] == (
        f"--tf_xla_auto_jit=0 --tf_xla_persistent_cache_directory={tmp_path}/tf"
    )
    assert os.environ["JAX_COMPILATION_CACHE_DIR"] == "/theirs"
    persist_compilations()  # again: not added twice
    assert os.environ["TF_XLA_FLAGS"].count("persistent_cache") == 1


def test_the_command_line_imports_keras_without_its_extras():
    """Keras's optional imports stay out of the command line's process, and stay importable."""
    code = (
        "import sys\n"
        "from nanoseq.runtime import KERAS_EXTRAS, import_keras, skip_keras_extras\n"
        "skip_keras_extras()\n"
        "import_keras()\n"
        "print(sorted(set(KERAS_EXTRAS) & set(sys.modules)))\n"
        "import matplotlib.pyplot\n"
        "print('matplotlib' in sys.modules)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["[]", "True"]
