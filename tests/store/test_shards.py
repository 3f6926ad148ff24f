"""The direct chunk writer and shard reader against zarr itself, file for file and value for value."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr
from zarr.codecs import ZstdCodec

from avlab.store.shards import DirectChunkWriter, direct_reader

CASES = {
    "sharded float16": dict(shape=(3, 2, 10, 4, 3, 3), chunks=(1, 1, 1, 4, 3, 3), shards=(1, 1, 4, 4, 3, 3),
                            dtype="float16", fill_value=np.nan, compressors=ZstdCodec(level=1)),
    "sharded uint8 masks": dict(shape=(3, 1, 5, 2, 6, 6), chunks=(1, 1, 1, 2, 6, 6), shards=(1, 1, 5, 2, 6, 6),
                                dtype="uint8", fill_value=255, compressors=ZstdCodec(level=1)),
    "plain complex": dict(shape=(3, 7, 5), chunks=(1, 7, 5), dtype="complex64", fill_value=complex(np.nan, np.nan),
                          compressors=ZstdCodec(level=1)),
    "plain int8 uncompressed": dict(shape=(3, 6, 2), chunks=(1, 6, 2), dtype="int8", fill_value=-1, compressors=None),
}


def block_for(shape: tuple[int, ...], dtype: str, rng: np.random.Generator) -> np.ndarray:
    values = rng.normal(size=shape[1:]) * 4
    if dtype == "complex64":
        values = values + 1j * rng.normal(size=shape[1:])
    block = values.astype(dtype)
    if np.dtype(dtype).kind == "f":
        block[..., 7:, :, :, :] = np.nan  # a video shorter than the array: padded frames
    elif dtype == "uint8":
        block[:, 3:] = 255  # unannotated frames
    return block


def files_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("c/**/*")) if p.is_file()}


@pytest.mark.parametrize("case", list(CASES))
def test_direct_writer_writes_what_zarr_writes(tmp_path: Path, case: str) -> None:
    options = CASES[case]
    rng = np.random.default_rng(0)
    blocks = [block_for(options["shape"], options["dtype"], rng) for _ in range(2)]
    paths = {}
    for how in ("zarr", "direct"):
        group = zarr.open_group(tmp_path / f"{how}.zarr", mode="w")
        array = group.create_array("a", dimension_names=[f"d{k}" for k in range(len(options["shape"]))],
                                   config={"write_empty_chunks": False}, **options)
        for video, block in enumerate(blocks):
            if how == "zarr":
                array[video] = block
            else:
                writer = DirectChunkWriter.open(str(tmp_path / f"{how}.zarr" / "a"))
                assert writer is not None
                writer.write(video, block)
        paths[how] = tmp_path / f"{how}.zarr" / "a"
    assert files_of(paths["direct"]) == files_of(paths["zarr"])
    read = zarr.open_array(paths["direct"], mode="r")
    for video, block in enumerate(blocks):
        np.testing.assert_array_equal(read[video], block)


def test_rewriting_with_fill_removes_the_old_files(tmp_path: Path) -> None:
    options = CASES["sharded float16"]
    group = zarr.open_group(tmp_path / "s.zarr", mode="w")
    group.create_array("a", dimension_names=[f"d{k}" for k in range(6)], config={"write_empty_chunks": False},
                       **options)
    writer = DirectChunkWriter.open(str(tmp_path / "s.zarr" / "a"))
    writer.write(1, block_for(options["shape"], "float16", np.random.default_rng(1)))
    assert files_of(tmp_path / "s.zarr" / "a")
    writer.write(1, np.full(options["shape"][1:], np.nan, np.float16))
    assert not files_of(tmp_path / "s.zarr" / "a")


def test_reader_reads_runs_across_shards(tmp_path: Path) -> None:
    options = CASES["sharded float16"]
    group = zarr.open_group(tmp_path / "s.zarr", mode="w")
    array = group.create_array("a", dimension_names=[f"d{k}" for k in range(6)], **options)
    block = block_for(options["shape"], "float16", np.random.default_rng(2))
    array[2] = block
    reader = direct_reader(str(tmp_path / "s.zarr" / "a"))
    assert reader is not None
    np.testing.assert_array_equal(reader.read((2, 1), 2, 7), block[1, 2:9])  # spans shards 0, 1 and 2
    assert np.isnan(reader.read((0, 0), 0, 3)).all()  # never written
