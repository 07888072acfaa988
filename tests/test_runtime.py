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
        "print(sorted({*OPTIONAL_IMPORTS, 'jax'} & set(sys.modules)), read.num_samples > 0)\n"
        "import matplotlib.pyplot, pandas\n"
        "print('matplotlib' in sys.modules, 'pandas' in sys.modules)\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}  # which imports JAX only to offer it
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
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


PREFERRED = (
    "import sys\n"
    "from nanoseq.runtime import prefer_jax\n"
    "chosen = prefer_jax()\n"
    "print(chosen, 'keras' in sys.modules)\n"
    "import keras\n"
    "print(keras.backend.backend())\n"
)


def test_basecalling_prefers_jax_unless_a_backend_was_asked_for(tmp_path):
    """Nothing asked (no KERAS_BACKEND, no Keras config naming another backend): JAX, where it
    is installed; KERAS_BACKEND, or a config file naming a backend other than the default,
    wins. Deciding imports nothing."""
    inherited = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    home = tmp_path / "keras_home"
    home.mkdir()

    def chosen(**env) -> list[str]:
        env = {**inherited, "KERAS_HOME": str(home), "CUDA_VISIBLE_DEVICES": "", **env}
        run = subprocess.run(
            [sys.executable, "-c", PREFERRED], capture_output=True, text=True, env=env
        )
        assert run.returncode == 0, run.stderr[-2000:]
        return run.stdout.split()

    assert chosen() == ["jax", "False", "jax"]
    assert chosen(KERAS_BACKEND="tensorflow") == ["tensorflow", "False", "tensorflow"]
    (home / "keras.json").write_text('{"backend": "tensorflow"}')  # as Keras writes it first
    assert chosen() == ["jax", "False", "jax"]
    (home / "keras.json").write_text('{"backend": "numpy"}')
    assert chosen() == ["numpy", "False", "numpy"]


def test_threads_keep_a_jax_process_to_as_many_cpus():
    """JAX has no thread setting of its own: ``set_threads(1)`` keeps the process to one CPU
    (before its first computation, as a basecall sets it)."""
    code = (
        "import os\n"
        "from nanoseq.runtime import cpu_threads, set_threads\n"
        "set_threads(1)\n"
        "print(len(os.sched_getaffinity(0)), cpu_threads())\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert run.stdout.split() == ["1", "1"]


def test_jax_is_preferred_on_a_gpu_only_with_its_cuda_plugin(monkeypatch):
    """A visible NVIDIA GPU without JAX's CUDA plugin leaves basecalling to TensorFlow (which
    the gpu extra makes use it); with the plugin, or without a GPU, JAX will do."""
    import importlib.util

    import nanoseq.runtime as runtime

    for hidden in ("", "-1"):  # CUDA_VISIBLE_DEVICES hides every GPU (as --device cpu does)
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", hidden)
        assert not runtime._nvidia_gpu_visible()
    found = importlib.util.find_spec

    def find_spec(name, plugin=False):
        if name in runtime.JAX_CUDA_PLUGINS:
            return object() if plugin else None
        return found(name)

    for gpu, plugin, usable in ((False, False, True), (True, False, False), (True, True, True)):
        monkeypatch.setattr(runtime, "_nvidia_gpu_visible", lambda gpu=gpu: gpu)
        monkeypatch.setattr(importlib.util, "find_spec", lambda n, p=plugin: find_spec(n, p))
        assert runtime._jax_usable() is usable
