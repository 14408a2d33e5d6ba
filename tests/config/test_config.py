"""The config: the shipped file loads; a bad name, bound or key fails as it
loads, naming the file and its path, on the command line too (exit 2); and
`xinf pipeline st` takes its WAL policy and capacity from it."""
import pathlib
import subprocess
import sys

import msgspec
import pytest

from xinfinity import cli
from xinfinity.app import st
from xinfinity.config import CONFIG_DIR, Capacity, Config, ConfigError, Symbol, load_yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATASET = ROOT / "fixtures" / "zxi-cancel-1294"


def _load(tmp_path, text: str) -> Config:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return load_yaml(path)


def _load_error(tmp_path, text: str) -> str:
    with pytest.raises(ConfigError) as e:
        _load(tmp_path, text)
    msg = str(e.value)
    assert msg.startswith(f"{tmp_path / 'c.yaml'}: "), msg
    return msg


def test_the_shipped_dev_yaml_loads_and_states_the_defaults():
    assert load_yaml(CONFIG_DIR / "dev.yaml") == Config()


def test_an_empty_file_is_the_defaults(tmp_path):
    assert _load(tmp_path, "") == Config()


@pytest.mark.parametrize("text, expect", [
    ("pipeline:\n  wait: fast\n", "Invalid enum value 'fast' - at `$.pipeline.wait`"),
    ("pipeline:\n  fsync: sometimes\n", "Invalid enum value 'sometimes' - at `$.pipeline.fsync`"),
    ("pipeline:\n  cores: {gatway: [0]}\n", "Invalid enum value 'gatway' - at `key` in `$.pipeline.cores`"),
])
def test_a_bad_name_in_an_enum_field_fails_at_load_naming_its_path(tmp_path, text, expect):
    assert expect in _load_error(tmp_path, text)


def test_a_bad_stp_mode_fails_whether_a_symbol_is_decoded_or_built():
    row = dict(id=0, name="BTC_USDT", base_asset_id=1, quote_asset_id=2, price_decimals=2,
               price_display_decimals=2, stp="sometimes")
    with pytest.raises(msgspec.ValidationError, match=r"Invalid enum value 'sometimes' - at `\$.stp`"):
        msgspec.convert(row, Symbol)
    with pytest.raises(ValueError, match="symbol BTC_USDT: stp 'sometimes' is not one of"):
        Symbol(**row)
    assert Symbol(**{**row, "stp": "expire_maker"}).stp == "expire_maker"


def test_a_ring_capacity_not_a_power_of_two_fails_at_load_naming_it(tmp_path):
    msg = _load_error(tmp_path, "pipeline:\n  ring_capacity: 1000\n")
    assert "ring_capacity 1000 is not a power of two - at `$.pipeline`" in msg
    assert _load(tmp_path, "pipeline:\n  ring_capacity: 1024\n").pipeline.ring_capacity == 1024


@pytest.mark.parametrize("key", ["batch", "forward_every", "loop_spins", "fsync_interval_ms"])
def test_a_count_below_one_fails_at_load_naming_its_path(tmp_path, key):
    assert f"Expected `int` >= 1 - at `$.pipeline.{key}`" in _load_error(tmp_path, f"pipeline:\n  {key}: 0\n")


def test_a_capacity_below_one_fails_at_load_naming_its_path(tmp_path):
    assert "Expected `int` >= 1 - at `$.capacity.max_orders`" in _load_error(tmp_path, "capacity:\n  max_orders: 0\n")


@pytest.mark.parametrize("text, expect", [
    ("pipeline:\n  ringcap: 8\n", "Object contains unknown field `ringcap` - at `$.pipeline`"),
    ("core:\n  dust: keep\n", "Object contains unknown field `core`"),     # removed: it was never read
    ("gateway:\n  prot: 80\n", "Object contains unknown field `prot` - at `$.gateway`"),
])
def test_an_unknown_key_fails_at_load_naming_it(tmp_path, text, expect):
    assert _load_error(tmp_path, text).endswith(expect)


def test_pipeline_st_with_a_bad_config_exits_2_naming_file_and_key(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("pipeline:\n  fsync: sometimes\n")
    r = subprocess.run([sys.executable, "-m", "xinfinity.cli", "pipeline", "st", "--input", str(DATASET),
                        "--out", str(tmp_path / "o"), "--config", str(cfg)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 2, r.stderr
    assert f"xinf: bad config: {cfg}: Invalid enum value 'sometimes' - at `$.pipeline.fsync`" in r.stderr
    assert not (tmp_path / "o" / "summary.txt").exists()


def test_pipeline_st_takes_its_fsync_and_capacity_from_the_config_and_fsync_from_the_flag_first(
        tmp_path, monkeypatch, capsys):
    calls = []

    def run_st(input_dir, out_dir, dust, **kw):
        calls.append(kw)
        (pathlib.Path(out_dir) / "summary.txt").write_text("")
        return {}

    monkeypatch.setattr(st, "run_st", run_st)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("capacity:\n  max_users: 128\npipeline:\n  fsync: interval_ms\n  fsync_interval_ms: 7\n")
    args = ["pipeline", "st", "--input", str(DATASET), "--out", str(tmp_path), "--config", str(cfg)]
    assert cli.main(args) == 0
    assert cli.main(args + ["--fsync", "off"]) == 0
    assert [(c["fsync"], c["fsync_interval_ms"], c["capacity"]) for c in calls] == [
        ("interval_ms", 7, Capacity(max_users=128)), ("off", 7, Capacity(max_users=128))]
