"""Where models.lock lives: state_dir by default (the config directory is read-only under the
unit), an explicit [models].lock_file keeps working, an old lock next to the config is carried over."""

from __future__ import annotations

from llm_upkeep.config import load_config
from llm_upkeep.models.endpoints import lock_path


def _config(tmp_path, extra: str = ""):
    conf = tmp_path / "etc"
    conf.mkdir()
    p = conf / "llm-upkeep.toml"
    p.write_text(f'state_dir = "{tmp_path / "state"}"\n[models]\n{extra}')
    return p


def test_default_is_state_dir(tmp_path):
    cfg = load_config(_config(tmp_path))
    assert lock_path(cfg) == tmp_path / "state" / "models.lock"
    assert not (tmp_path / "etc" / "models.lock").exists()


def test_explicit_lock_file_keeps_working(tmp_path):
    cfg = load_config(_config(tmp_path, 'lock_file = "models.lock"\n'))
    assert lock_path(cfg) == (tmp_path / "etc" / "models.lock").resolve()
    (tmp_path / "b").mkdir()
    cfg = load_config(_config(tmp_path / "b", f'lock_file = "{tmp_path / "pins.lock"}"\n'))
    assert lock_path(cfg) == tmp_path / "pins.lock"


def test_an_old_lock_next_to_the_config_is_copied_once(tmp_path):
    p = _config(tmp_path)
    (tmp_path / "etc" / "models.lock").write_text("# old pins\n")
    cfg = load_config(p)
    assert lock_path(cfg).read_text() == "# old pins\n"
    # Later writes go to state_dir; the old file is never read again nor written.
    lock_path(cfg).write_text("# new pins\n")
    assert lock_path(cfg).read_text() == "# new pins\n"
    assert (tmp_path / "etc" / "models.lock").read_text() == "# old pins\n"
