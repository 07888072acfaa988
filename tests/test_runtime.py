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


def test_the_command_line_goes_without_optional_imports(sample_dir):
    """Keras's and pyarrow's optional imports stay out of the command line's process (which
    imports Keras and reads pod5), and stay importable."""
    code = (
        "import sys\n"
        "from nanoseq.runtime import OPTIONAL_IMPORTS, import_keras, skip_optional_imports\n"
        "from nanoseq.signal.readers import read_signal\n"
        "skip_optional_imports()\n"
        "import_keras()\n"
        f"read = next(iter(read_signal([{str(sample_dir / 'reads/lambda.pod5')!r}])))\n"
        "print(sorted(set(OPTIONAL_IMPORTS) & set(sys.modules)), read.num_samples > 0)\n"
        "import matplotlib.pyplot, pandas\n"
        "print('matplotlib' in sys.modules, 'pandas' in sys.modules)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["[]", "True", "True", "True"]


def test_a_loaded_model_skips_its_initializers_and_keeps_its_weights(tmp_path):
    """Loading fills no variable by its initializer (the file's weights replace them), and the
    loaded model has the saved weights; afterwards initializers draw again."""
    import keras
    import numpy as np

    from nanoseq.models import load_model
    from nanoseq.runtime import initializers_skipped

    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(4, bias_initializer="ones")(inputs))
    model.save(tmp_path / "m.keras")
    with initializers_skipped():
        inside = keras.layers.Dense(4, bias_initializer="ones")
        inside.build((None, 3))
    assert not np.any(inside.kernel.numpy()) and not np.any(inside.bias.numpy())
    loaded = load_model(str(tmp_path / "m.keras"))
    for saved, read in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(saved, read)
    after = keras.layers.Dense(4, bias_initializer="ones")
    after.build((None, 3))
    assert np.any(after.kernel.numpy()) and np.all(after.bias.numpy() == 1)
