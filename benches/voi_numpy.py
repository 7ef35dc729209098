"""NumPy and JAX-on-CPU baselines for docs/benchmarks.md (value of information).

Same shapes as `cargo xtask bench --family voi`: EVPI of 500K x 4 net benefits,
EVPI over a 101-point willingness-to-pay grid from 500K x 4 costs and effects, and
linear EVPPI of 2 parameters at 500K draws (least squares). Prints the median of 20
runs of each. Run with `python3 benches/voi_numpy.py`.
"""
import time

import numpy as np

N, D, K = 500_000, 4, 101
rng = np.random.default_rng(1)
params = rng.standard_normal((N, 4))
s = np.arange(D)
costs = 1e4 + 3e3 * s + 500 * (params[:, :1] * s - params[:, 1:2]) + 200 * rng.standard_normal((N, D))
effects = 1 + 0.12 * s + 0.05 * (params[:, 2:3] * s + params[:, 3:4]) + 0.02 * rng.standard_normal((N, D))
nb = 25_000 * effects - costs
wtp = np.arange(K) * 1000.0


def median_ms(f, reps=20):
    f()
    t = []
    for _ in range(reps):
        a = time.perf_counter()
        f()
        t.append(time.perf_counter() - a)
    return 1e3 * float(np.median(t))


def evpi(x):
    return x.max(axis=1).mean() - x.mean(axis=0).max()


def grid():
    return [evpi(k * effects - costs) for k in wtp]


def evppi_linear():
    x = np.column_stack([np.ones(N), params[:, :2]])
    inc = nb[:, 1:] - nb[:, :1]
    beta, *_ = np.linalg.lstsq(x, inc, rcond=None)
    fitted = np.column_stack([np.zeros(N), x @ beta])
    return evpi(fitted)


print(f"numpy {np.__version__}")
print(f"numpy EVPI 500K x 4: {median_ms(lambda: evpi(nb)):.2f} ms")
print(f"numpy EVPI grid 101 x 500K x 4: {median_ms(grid, 5):.1f} ms")
print(f"numpy EVPPI linear 2 params 500K: {median_ms(evppi_linear):.1f} ms")
try:
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    jnb, je, jc, jw = (jnp.asarray(a) for a in (nb, effects, costs, wtp))
    jevpi = jax.jit(lambda x: x.max(axis=1).mean() - x.mean(axis=0).max())
    jgrid = jax.jit(lambda e, c, w: jax.vmap(lambda k: (k * e - c).max(axis=1).mean() - (k * e - c).mean(axis=0).max())(w))
    print(f"jax {jax.__version__} (CPU, x64)")
    print(f"jax EVPI 500K x 4: {median_ms(lambda: jevpi(jnb).block_until_ready()):.2f} ms")
    print(f"jax EVPI grid 101 x 500K x 4: {median_ms(lambda: jgrid(je, jc, jw).block_until_ready(), 5):.1f} ms")
except ImportError:
    print("jax not installed")
