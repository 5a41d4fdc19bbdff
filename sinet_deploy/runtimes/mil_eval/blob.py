"""Reader for the MIL weight blob (``Data/com.apple.CoreML/weights/weight.bin``).

The format, as written by coremltools' ``libmilstorage`` (storage version 2):

- a 64-byte file header: ``uint32 count``, ``uint32 version`` (2), padding;
- for every blob, a 64-byte metadata record at the offset the program's ``blobFileValue`` names:
  ``uint32 sentinel`` (``0xDEADBEEF``), ``uint32 dtype`` (a ``BlobDataType`` code),
  ``uint64 size_in_bytes``, ``uint64 data_offset``, ``uint64 padding_size_in_bits``, reserved;
- the data itself at ``data_offset`` (64-byte aligned), little-endian.

We parse it with NumPy instead of calling coremltools' private ``_BlobStorageReader`` so that
the evaluator reads the bytes independently of the converter that wrote them, and so every
inconsistency (wrong sentinel, dtype that disagrees with the program, truncated data) is an
:class:`~sinet_deploy.core.errors.ArtifactError` naming the offset.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from sinet_deploy.core.errors import ArtifactError

SENTINEL = 0xDEADBEEF
HEADER_SIZE = 64
METADATA = struct.Struct("<IIQQQ")

#: ``BlobDataType`` codes of libmilstorage → NumPy dtype (byte-sized types only).
BLOB_DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f2"),
    2: np.dtype("<f4"),
    3: np.dtype("u1"),
    4: np.dtype("i1"),
    6: np.dtype("<i2"),
    7: np.dtype("<u2"),
    14: np.dtype("<i4"),
    15: np.dtype("<u4"),
}

#: Sub-byte codes (int4, uint1/2/3/4/6) that SINet's programs never contain.
SUB_BYTE_CODES = {8: "int4", 9: "uint1", 10: "uint2", 11: "uint4", 12: "uint3", 13: "uint6"}


class BlobFile:
    """One ``weight.bin``, read into memory once; :meth:`read` returns a blob by offset."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.data = self.path.read_bytes()
        except OSError as exc:
            raise ArtifactError(
                f"cannot read weight blob {self.path}: {exc.strerror}", hint="re-export the model"
            ) from None
        if len(self.data) < HEADER_SIZE:
            raise ArtifactError(
                f"weight blob {self.path.name} is truncated ({len(self.data)} bytes)",
                hint="re-export the model",
            )
        self.count, self.version = struct.unpack_from("<II", self.data, 0)
        if self.version != 2:
            raise ArtifactError(
                f"weight blob {self.path.name} has storage version {self.version}, expected 2",
                hint="re-export the model",
            )

    def read(self, offset: int, dtype: np.dtype, count: int) -> np.ndarray:
        """The blob whose metadata record is at ``offset``, as ``count`` values of ``dtype``.

        Raises:
            ArtifactError: bad sentinel, a dtype or size that disagrees with the program, or a
                blob that runs past the end of the file.
        """
        where = f"{self.path.name} @ {offset}"
        if offset < HEADER_SIZE or offset + METADATA.size > len(self.data):
            raise ArtifactError(
                f"weight blob offset out of range ({where})",
                hint="the package is corrupt; re-export the model",
            )
        sentinel, code, size, data_offset, _pad_bits = METADATA.unpack_from(self.data, offset)
        if sentinel != SENTINEL:
            raise ArtifactError(
                f"no blob metadata at {where} (sentinel {sentinel:#x})",
                hint="the package is corrupt; re-export the model",
            )
        if code in SUB_BYTE_CODES:
            raise ArtifactError(
                f"blob {where} holds {SUB_BYTE_CODES[code]} data, which the "
                "reference evaluator does not read",
                hint="export with 8-bit (or wider) weights",
            )
        blob_dtype = BLOB_DTYPES.get(code)
        if blob_dtype is None:
            raise ArtifactError(
                f"unknown blob dtype code {code} at {where}",
                hint="the package is corrupt or newer than this evaluator",
            )
        if (
            blob_dtype.kind != np.dtype(dtype).kind
            or blob_dtype.itemsize != np.dtype(dtype).itemsize
        ):
            raise ArtifactError(
                f"blob {where} holds {blob_dtype.name} but the program "
                f"declares {np.dtype(dtype).name}",
                hint="the package is corrupt; re-export the model",
            )
        if size != count * blob_dtype.itemsize:
            raise ArtifactError(
                f"blob {where} has {size} bytes, the program expects {count * blob_dtype.itemsize}",
                hint="the package is corrupt; re-export the model",
            )
        if data_offset + size > len(self.data):
            raise ArtifactError(
                f"blob {where} runs past the end of the file",
                hint="the package is truncated; re-export the model",
            )
        return np.frombuffer(self.data, dtype=blob_dtype, count=count, offset=data_offset)
