"""Launch settings of the CUDA twins (plain Python: importing this module imports no CUDA).

The twins read these values at every call, so tests can shrink them (tiny
inputs then span several blocks and every grid-stride loop takes more than
one turn) and benchmarks can tune them without recompiling anything that does
not depend on them.
"""

#: threads per block: a power of two, at most :data:`MAX_THREADS_PER_BLOCK`
#: (block reductions are shared-memory trees sized for that maximum)
THREADS_PER_BLOCK = 256

#: the largest block the shared-memory reductions are sized for
MAX_THREADS_PER_BLOCK = 1024

#: most blocks in a grid; grid-stride loops cover the rest.  ~16 blocks of
#: 256 threads per SM of an H200 (132 SMs) keeps every SM busy.
MAX_BLOCKS = 2048

#: replicates one pass over the rows folds in the general bootstrap kernel (cells,
#: several features or cluster keys; each thread keeps the sums in local memory).
#: The one-cell, one-feature kernel (a mean) folds ``bootstrap.MEAN_REPS`` = 8, a
#: compile-time constant that keeps its sums in registers.
REPLICATES_PER_PASS = 8


def threads_per_block() -> int:
    """:data:`THREADS_PER_BLOCK`, checked (power of two, within the reduction buffers)."""
    t = int(THREADS_PER_BLOCK)
    if t < 1 or t > MAX_THREADS_PER_BLOCK or t & (t - 1):
        raise ValueError(f"fastevals._cuda.config.THREADS_PER_BLOCK must be a power of two in "
                         f"[1, {MAX_THREADS_PER_BLOCK}]; got {THREADS_PER_BLOCK!r}")
    return t


def blocks_for(work: int, tpb: int) -> int:
    """Blocks for ``work`` grid-stride items: enough for one item per thread, at most :data:`MAX_BLOCKS`."""
    need = (max(int(work), 1) + tpb - 1) // tpb
    return max(1, min(need, int(MAX_BLOCKS)))

#: AUC bootstrap: a cell's sorted rows are split into segments of at least this many rows,
#: one thread per (segment, cell, replicate), then combined in order (AUC is a sum over rows
#: given the weighted negatives below each row)
SORTED_SEGMENT_ROWS = 16384

#: most segments per cell
MAX_SEGMENTS = 256
