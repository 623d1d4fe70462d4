"""Scale-out on JAX's own runtime: processes, the data mesh, and global arrays.

One process per host (or several per machine, as in the loopback test) calls
:func:`initialize`, which wraps ``jax.distributed.initialize``; on CPU it first selects gloo
collectives so ``psum``/``ppermute`` work across processes. The trainer then builds a 1-D mesh
``("data",)`` over *all* devices of all processes; each process feeds its slice of the global
batch (:func:`constellations.siglip.data.batch_indices`) and :func:`global_batch` assembles the
global sharded arrays. Parameters are replicated.
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

AXIS = "data"


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, *, cpu_collectives: str = "gloo",
               initialization_timeout: int = 120, coordinator_bind_address: str | None = None) -> None:
    """Start JAX's distributed runtime if asked (arguments or JAX_COORDINATOR_ADDRESS etc. set).

    With no coordinator given and no environment variables, this is a single-process run and
    nothing happens. Must be called before any JAX computation. ``coordinator_bind_address``
    (process 0 only) defaults to the coordinator address itself when that is a loopback address,
    else to JAX's "[::]:PORT" (every interface).
    gloo itself connects through the address of each machine's hostname.
    """
    coordinator_address = coordinator_address or os.environ.get("JAX_COORDINATOR_ADDRESS")
    if coordinator_address is None:
        return
    num_processes = int(num_processes if num_processes is not None else os.environ["JAX_NUM_PROCESSES"])
    process_id = int(process_id if process_id is not None else os.environ["JAX_PROCESS_ID"])
    if not 0 <= process_id < num_processes:
        raise ValueError(f"process_id must be in [0, {num_processes}); got {process_id}")
    host = coordinator_address.rsplit(":", 1)[0]
    if coordinator_bind_address is None and (host.startswith("127.") or host == "localhost"):
        coordinator_bind_address = coordinator_address  # a loopback run listens on loopback only
    jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
    jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                               process_id=process_id, initialization_timeout=initialization_timeout,
                               coordinator_bind_address=coordinator_bind_address)


def data_mesh(devices=None) -> Mesh:
    """A 1-D mesh named "data" over ``devices`` (default: every device of every process)."""
    devices = jax.devices() if devices is None else list(devices)
    return Mesh(np.array(devices), (AXIS,))


def global_batch(mesh: Mesh, local_tree, *, stacked: bool = False):
    """Global arrays sharded P("data") from this process's rows (in process order).

    ``stacked``: the arrays are batches stacked on a leading axis of steps, (k, rows, ...), and are
    sharded P(None, "data") over their rows.
    """
    sharding = NamedSharding(mesh, P(None, AXIS) if stacked else P(AXIS))
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), local_tree)


def replicate(mesh: Mesh, tree):
    """Global replicated arrays from identical host values on every process."""
    sharding = NamedSharding(mesh, P())
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), tree)


def to_host(tree):
    """NumPy copies of (replicated or fully addressable) arrays, on any process."""
    def get(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return np.asarray(x.addressable_data(0))
        return np.asarray(x)
    return jax.tree.map(get, tree)
