"""NumPy baselines for docs/benchmarks.md (causal simulator and parent-set posterior).

The same work as `cargo xtask bench --family sim` at issue 10's sizes, written the way
a NumPy user would batch it (vectorised over environments and rows, a Python loop only
over topological positions and parent-set sizes):

- generate 1024 random linear-Gaussian SCMs of 20 variables (Erdos-Renyi, expected
  degree 2, a random order, weights +-U(0.5, 2), biases U(-1, 1), noise U(0.5, 1.5), a
  random sink as the target);
- draw 100 rows from each with one do-intervention per environment;
- the exact posterior over the target's parent sets of size <= 2 (191 sets) after one
  new row: the Gram matrices updated, every set scored by the Normal-Inverse-Gamma
  marginal likelihood (lambda = a0 = b0 = 1, batched Cholesky solves), normalised by
  log-sum-exp, the marginals formed.

Prints the median of 20 runs of each. Run with `python3 benches/sim_numpy.py`.
"""
import itertools
import math
import time

import numpy as np

B, D, ROWS, K = 1024, 20, 100, 2
rng = np.random.default_rng(7)


def median_ms(f, reps=20):
    f()
    t = []
    for _ in range(reps):
        a = time.perf_counter()
        f()
        t.append(time.perf_counter() - a)
    return 1e3 * float(np.median(t))


def generate():
    order = np.argsort(rng.random((B, D)), axis=1)
    p = 2.0 / (D - 1)
    adjacency = np.tril(rng.random((B, D, D)) < p, k=-1)
    sign = np.where(rng.random((B, D, D)) < 0.5, -1.0, 1.0)
    weights = (adjacency * sign * rng.uniform(0.5, 2.0, (B, D, D))).astype(np.float32)
    bias = rng.uniform(-1, 1, (B, D)).astype(np.float32)
    noise = rng.uniform(0.5, 1.5, (B, D)).astype(np.float32)
    # A random sink (no children) by position.
    sinks = ~adjacency.any(axis=1)
    pick = np.argmax(np.where(sinks, rng.random((B, D)), -1.0), axis=1)
    target = order[np.arange(B), pick]
    return order, weights, bias, noise, target


def sample(scm, rows=ROWS):
    order, weights, bias, noise, target = scm
    # One do per environment: a random non-sink position clamped to U(-2, 2).
    clamped = rng.integers(0, D - 1, B)
    value = rng.uniform(-2, 2, B).astype(np.float32)
    z = rng.standard_normal((B, rows, D), dtype=np.float32)
    x = np.empty((B, rows, D), np.float32)
    for i in range(D):
        parents = np.einsum("bj,brj->br", weights[:, i, :i], x[:, :, :i])
        xi = bias[:, None, i] + parents + noise[:, None, i] * z[:, :, i]
        x[:, :, i] = np.where((clamped == i)[:, None], value[:, None], xi)
    # Positions to variables.
    out = np.empty_like(x)
    np.put_along_axis(out, np.broadcast_to(order[:, None, :], x.shape), x, axis=2)
    return out


def parent_sets(m, k):
    sets = [()]
    for size in range(1, k + 1):
        sets.extend(itertools.combinations(range(m), size))
    return sets


SETS = parent_sets(D - 1, K)
# [sets, candidates] membership, for the marginals.
MEMBERSHIP = np.zeros((len(SETS), D - 1))
for s, members in enumerate(SETS):
    MEMBERSHIP[s, list(members)] = 1.0


def posterior_state(samples, target):
    # Augmented rows [1, candidates..., target] per environment, in f64.
    idx = np.array([[v for v in range(D) if v != t] + [t] for t in target])
    x = np.take_along_axis(samples.astype(np.float64), idx[:, None, :], axis=2)
    z = np.concatenate([np.ones(x.shape[:2] + (1,)), x], axis=2)
    return np.einsum("bri,brj->bij", z, z), idx


def posterior_update(gram, idx, new_row):
    x = np.take_along_axis(new_row.astype(np.float64), idx, axis=1)
    a = np.concatenate([np.ones((B, 1)), x], axis=1)
    gram += a[:, :, None] * a[:, None, :]
    n = gram[:, 0, 0]
    an = 1.0 + n / 2
    const = np.array([math.lgamma(v) for v in an]) - n / 2 * math.log(2 * math.pi)
    y = D
    yy = gram[:, y, y]
    scores = np.empty((B, len(SETS)))
    start = 0
    for size in range(K + 1):
        group = [s for s in SETS if len(s) == size]
        cols = np.array([[0] + [1 + c for c in s] for s in group])  # [sets, size+1]
        lam = gram[:, cols[:, :, None], cols[:, None, :]] + np.eye(size + 1)
        rhs = gram[:, cols, y]
        chol = np.linalg.cholesky(lam)
        v = np.linalg.solve(chol, rhs[..., None])[..., 0]
        logdet = 2 * np.log(np.diagonal(chol, axis1=2, axis2=3)).sum(axis=2)
        bn = 1.0 + 0.5 * np.maximum(yy[:, None] - (v * v).sum(axis=2), 0.0)
        scores[:, start:start + len(group)] = (
            const[:, None] - 0.5 * logdet - an[:, None] * np.log(bn)
        )
        start += len(group)
    scores -= scores.max(axis=1, keepdims=True)
    w = np.exp(scores)
    w /= w.sum(axis=1, keepdims=True)
    return w @ MEMBERSHIP


scm = generate()
samples = sample(scm)
print(f"numpy {np.__version__}")
print(f"numpy generate {B} SCMs x {D} variables: {median_ms(generate):.2f} ms")
print(f"numpy sample {B} x {ROWS} rows x {D} variables: {median_ms(lambda: sample(scm)):.2f} ms")
gram, idx = posterior_state(samples, scm[4])
row = sample(scm, 1)[:, 0, :]
print(
    f"numpy posterior k={K} ({len(SETS)} sets), {B} environments, +1 row: "
    f"{median_ms(lambda: posterior_update(gram.copy(), idx, row)):.2f} ms"
)
