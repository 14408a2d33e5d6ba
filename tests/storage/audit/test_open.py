"""`open_audit_store` chooses the backend by the config's persistence section,
whose defaults need no service."""
from __future__ import annotations

import pytest

from xinfinity.config import Config, load_yaml
from xinfinity.storage.audit import AUDIT_DB, open_audit_store


def test_the_default_is_sqlite_in_the_data_dir(tmp_path):
    store = open_audit_store(Config(), tmp_path)
    assert store.backend == "sqlite" and (tmp_path / AUDIT_DB).exists()
    store.close()


def test_a_tdengine_dsn_chooses_tdengine_and_a_bad_one_is_refused_naming_it(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("persistence:\n  tdengine_dsn: mysql://db.example/audit\n  audit_batch: 1000\n")
    cfg = load_yaml(path)
    assert cfg.persistence.audit_batch == 1000
    with pytest.raises(ValueError, match=r"persistence.tdengine_dsn mysql://\.\.\.: use http\(s\)://"):
        open_audit_store(cfg, tmp_path)
    assert not (tmp_path / AUDIT_DB).exists()


def test_a_bad_persistence_key_fails_at_load_naming_its_path(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("persistence:\n  audit_bach: 10\n")
    with pytest.raises(ValueError, match=r"unknown field `audit_bach` - at `\$.persistence`"):
        load_yaml(path)
