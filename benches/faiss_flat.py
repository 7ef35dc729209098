"""Times faiss-cpu's exact flat index on vectors written by
`cargo run --release -p tessera-bench --example search_faiss`, side by side with
tessera in the same run. Prints one JSON object per faiss configuration.

Usage: python3 benches/faiss_flat.py DIR N DIM QUERIES K REPEATS
DIR holds vectors.f32 and queries.f32 (raw little-endian f32, row-major, normalised).
"""
import json
import sys
import time

import faiss
import numpy as np


def main():
    folder, n, dim, q, k, repeats = sys.argv[1], *map(int, sys.argv[2:7])
    vectors = np.fromfile(f"{folder}/vectors.f32", dtype=np.float32).reshape(n, dim)
    queries = np.fromfile(f"{folder}/queries.f32", dtype=np.float32).reshape(q, dim)
    index = faiss.IndexFlatIP(dim)
    index.add(vectors)
    default_threshold = faiss.cvar.distance_compute_blas_threshold
    for name, threshold in [("faiss flat (default)", default_threshold), ("faiss flat (BLAS forced)", 1)]:
        faiss.cvar.distance_compute_blas_threshold = threshold
        index.search(queries, k)  # warm-up
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            _, ids = index.search(queries, k)
            best = min(best, time.perf_counter() - start)
        print(json.dumps({
            "name": name,
            "seconds": best,
            "ids": ids.astype(np.int64).tolist(),
            "threads": faiss.omp_get_max_threads(),
            "version": faiss.__version__,
        }))
    # NumPy: one matrix product and a partial sort, the baseline most users write.
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        scores = queries @ vectors.T
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        order = np.take_along_axis(scores, top, 1).argsort(axis=1)[:, ::-1]
        ids = np.take_along_axis(top, order, 1)
        best = min(best, time.perf_counter() - start)
    print(json.dumps({"name": "numpy matmul + argpartition", "seconds": best,
                      "ids": ids.astype(np.int64).tolist(), "threads": 0,
                      "version": np.__version__}))


if __name__ == "__main__":
    main()
