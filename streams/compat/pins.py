"""The Faust (and mode) methods our patches replace, pinned by a digest of their source.

Each patch in this package was written against one version of the method it replaces.
`tests/unit/test_compat_pins.py` recomputes each digest from the installed library's
source file (not from the live class, which the patch may already have replaced): an
upgrade that changes one fails that test, naming the method and the patch to re-read.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import inspect
from typing import NamedTuple


class Pin(NamedTuple):
    module: str
    qualname: str  # Class.method
    patch: str  # where we replace it
    digest: str  # sha256 of the method's AST dump (formatting and comments ignored)


PINS = (
    Pin(
        "faust.transport.consumer",
        "Consumer.getmany",
        "faust_fixes.py (1)",
        "3edfa4d28428475b41ecbc7825c29c19c57b8e5d20d5982592ed6836ce9c75d4",
    ),
    Pin(
        "faust.transport.consumer",
        "Consumer.perform_seek",
        "faust_fixes.py (1)",
        "ebb3ede033ce79532fc25a942362b85e5cf007b5a90c803ae0adb902c9a08e70",
    ),
    Pin(
        "faust.transport.producer",
        "ProducerBuffer._send_pending",
        "faust_fixes.py (2)",
        "d05d4b18d98e087d855eabf93eef4282d35d35a5e4d644faecd55adafde0976d",
    ),
    Pin(
        "faust.transport.producer",
        "ProducerBuffer.flush",
        "faust_fixes.py (2)",
        "e563b3fbac570af9e0ab15e7982a73bd9f6f0e716eaa3b74bbf0be90fcc23a0c",
    ),
    Pin(
        "mode.utils.queues",
        "FlowControlEvent.resume",
        "faust_fixes.py (3)",
        "56a7dfbb1a06613d17a54626b2096d533e0ae1c9fd10663c93c6e74be0e3d571",
    ),
    Pin(
        "faust.transport.consumer",
        "Consumer._new_offset",
        "faust_fixes.py (4, 5)",
        "3ffdfa3b0925c3bfdbb5f3abecc71b9b3c43468937c8401c02ab59d1700c34e9",
    ),
    Pin(
        "faust.transport.consumer",
        "Consumer._add_gap",
        "faust_fixes.py (a jump in offsets, logged)",
        "3ef34d9891835018300c6489a2dd70a7fdd901e2d02c2bfbcf9ab39c651d432d",
    ),
    Pin(
        "faust.tables.recovery",
        "Recovery._build_highwaters",
        "tansu.py (fence)",
        "166fc77ffec10349a4380087f88f4706015e249f81982d053011af562f2d82f0",
    ),
    Pin(
        "faust.transport.drivers.aiokafka",
        "AIOKafkaConsumerThread._create_worker_consumer",
        "tansu.py (fetch wait)",
        "89f40d75d68d7c98a57aa92a2ed1e178d9baadce00847bd335f84858ab7f62dc",
    ),
    Pin(
        "faust.tables.base",
        "Collection._new_store_by_url",
        "rocks_store.py (HoldingsTable)",
        "2acd4e830ebb2403f3a28a5564652c2ae456e1923487340f7f84ca7eeda52b8a",
    ),
    Pin(
        "faust.stores.rocksdb",
        "Store._set",
        "rocks_store.py (1, 2)",
        "0d94fd068b5f2a78e9c30e2a2c6cb12d720edbd2e142a003efa33d18e35c4ddc",
    ),
    Pin(
        "faust.stores.rocksdb",
        "Store._get",
        "rocks_store.py (1, 2)",
        "dfe0a3861e535685f6367ce91b5a67b678eabd9ad5ac4ad90843ed60e18ab241",
    ),
    Pin(
        "faust.stores.rocksdb",
        "Store._iteritems",
        "rocks_store.py (2)",
        "8164e5f9d7645a6bbe95f1284391f70d40886d9e4b53d2544f23b5518a83dde8",
    ),
    Pin(
        "faust.stores.rocksdb",
        "Store.set_persisted_offset",
        "rocks_store.py (2: the offset key it writes)",
        "aad875aeae82dd9d38ee2992a742ee85e5ce1af9c414408d0e87447bcb9783d8",
    ),
)


def source_digest(module: str, qualname: str) -> str:
    """The digest of `qualname`'s definition as written in `module`'s source file."""
    tree = ast.parse(inspect.getsource(importlib.import_module(module)))
    class_name, method = qualname.split(".")
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name == method:
                    return hashlib.sha256(ast.dump(item).encode()).hexdigest()
    msg = f"{module} has no {qualname} any more"
    raise LookupError(msg)
