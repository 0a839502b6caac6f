"""Small writes done together in one thread trip (``writebatch``) answer as they would alone: each its own answer
or error, whichever step a write fails at (its file removed, the others placed), and the writes of one object in
one loop turn in one trip."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from tinystack.core import errors
from tinystack.object.servers import diskfile, writebatch
from tinystack.object.servers.iothreads import IoThreads
from tinystack.object.servers.object import _prepare_whole

pytestmark = pytest.mark.unit

TS = "0000000005.00000"
FOUR = hashlib.md5(b"four", usedforsecurity=False).hexdigest()


def _device(tmp_path: Path, name: str) -> Path:
    root = tmp_path / name
    (root / "tmp").mkdir(parents=True)
    return root


def _job(root: Path, name_hash: str, body: bytes = b"four", ts: str = TS, wanted: str = "") -> writebatch.Prepare:
    directory = diskfile.object_dir(root, 1, name_hash)
    return lambda: _prepare_whole(root, directory, True, body, ts, wanted, {"x-timestamp": ts})


def test_each_write_of_a_batch_answers_alone(tmp_path: Path) -> None:
    a, b, c = (_device(tmp_path, d) for d in ("sda", "sdb", "sdc"))
    # b already holds a newer write (409 for this one); c is an unmounted device (507); a is stored.
    newer = _job(b, "b" * 32, ts="0000000009.00000")
    assert writebatch.write_together([newer])[0][1] is None
    os.rmdir(c / "tmp")
    os.rmdir(c)
    out = writebatch.write_together([_job(a, "a" * 32), _job(b, "b" * 32), _job(c, "c" * 32),
                                     _job(a, "d" * 32, wanted="0" * 32)])
    (meta, newer), error = out[0]
    assert error is None and not newer and meta["etag"] == FOUR and meta["content-length"] == 4
    assert out[1] == ((None, "0000000009.00000"), None)
    assert isinstance(out[2][1], errors.TinyError) and out[2][1].status == 507
    assert isinstance(out[3][1], errors.TinyError) and out[3][1].status == 422
    state = diskfile.scan(diskfile.object_dir(a, 1, "a" * 32))
    assert state.data is not None and state.data.read_bytes() == b"four"
    assert not diskfile.object_dir(a, 1, "d" * 32).exists()
    assert os.listdir(a / "tmp") == [] and os.listdir(b / "tmp") == []


@pytest.mark.parametrize("step", ["start_sync", "sync", "place", "sync_dir"])
def test_a_write_failing_at_a_later_step_fails_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     step: str) -> None:
    a, b = _device(tmp_path, "sda"), _device(tmp_path, "sdb")
    real = getattr(diskfile.Writer, step)

    def failing(self: diskfile.Writer, *args: Any, **kwargs: Any) -> None:
        if str(self.tmp_path).startswith(str(b)):
            raise OSError(5, "device error")
        real(self, *args, **kwargs)

    monkeypatch.setattr(diskfile.Writer, step, failing)
    out = writebatch.write_together([_job(a, "a" * 32), _job(b, "a" * 32)])
    assert out[0][1] is None and isinstance(out[1][1], OSError)
    assert diskfile.scan(diskfile.object_dir(a, 1, "a" * 32)).data is not None
    assert os.listdir(a / "tmp") == [] and os.listdir(b / "tmp") == []  # the failed write's file went too
    placed = diskfile.scan(diskfile.object_dir(b, 1, "a" * 32)).data is not None
    assert placed == (step == "sync_dir")  # renamed already when its dir's fsync failed: not answered stored


def test_the_writes_of_one_loop_turn_take_one_trip(tmp_path: Path) -> None:
    pool = IoThreads(4, "test-io")
    trips: list[int] = []
    real_run = pool.run

    async def counted(fn: Any, *args: Any) -> Any:
        trips.append(len(args[0]))
        return await real_run(fn, *args)

    pool.run = counted  # type: ignore[method-assign]
    batcher = writebatch.WriteBatcher(lambda: pool)
    roots = [_device(tmp_path, f"sd{d}") for d in "abc"]

    async def main() -> None:
        first = await asyncio.gather(*(batcher.run(_job(r, "e" * 32), "e") for r in roots),
                                     batcher.run(_job(roots[0], "9" * 32), "9"))  # another object: a trip of its own
        assert [m["etag"] for m, _ in first] == [FOUR] * 4
        with pytest.raises(errors.TinyError):
            await asyncio.gather(batcher.run(_job(roots[0], "f" * 32), "f"),
                                 batcher.run(_job(roots[1], "f" * 32, wanted="0" * 32), "f"))
        assert await batcher.run(_job(roots[2], "e" * 32), "e") == (None, TS)  # the same timestamp again: a 409

    try:
        asyncio.run(main())
    finally:
        pool.shutdown()
    assert sorted(trips) == [1, 1, 2, 3]
