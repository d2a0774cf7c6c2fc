"""local_runtime/gcpolicy.py and the zygote's frozen preload: long-lived objects leave the collector's scans."""

from __future__ import annotations

import gc

from local_runtime import cli, container, gcpolicy


def test_objects_that_survive_a_full_collection_are_frozen_and_later_ones_are_not():
    gcpolicy.freeze_survivors_of_full_collections()
    gcpolicy.freeze_survivors_of_full_collections()
    assert gc.callbacks.count(gcpolicy._freeze_survivors) == 1  # idempotent
    survivor = [object()]
    gc.collect()
    frozen = gc.get_freeze_count()
    assert frozen > 0 and not any(survivor is o for o in gc.get_objects())  # out of every generation
    newer = [object()]
    gc.collect(0)  # a young collection freezes nothing
    assert gc.get_freeze_count() == frozen and any(newer is o for o in gc.get_objects())
    # a cycle made after the freeze is still collected
    cycle = [None]
    cycle[0] = cycle
    del cycle
    assert gc.collect() >= 1


def test_a_bounded_command_installs_the_policy(tmp_path, capsys):
    assert gcpolicy._freeze_survivors not in gc.callbacks  # conftest: each test starts with the collector as found
    assert cli.main(["--workspace", str(tmp_path), "executions"]) == 0
    assert "no executions in" in capsys.readouterr().out
    assert gcpolicy._freeze_survivors in gc.callbacks


def test_a_job_starts_with_the_preloaded_libraries_frozen(tmp_path):
    script = tmp_path / "job.py"
    script.write_text("import gc, sys\nprint(gc.get_freeze_count(), 'numpy' in sys.modules)\n")
    log = tmp_path / "log.txt"
    assert container.run_script([str(script)], {"PATH": "/usr/bin:/bin"}, str(tmp_path), str(log), 60) == 0
    count, numpy_loaded = log.read_text().split()
    assert int(count) > 10_000 and numpy_loaded == "True"
