"""Where a Lloyd iteration's time goes on the 12 MP mosaic, emseg against scikit-learn. Run from the repository root."""
import sys, time, warnings
from pathlib import Path
import numba
import numpy as np
from threadpoolctl import threadpool_limits
warnings.simplefilter("ignore")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cases import Photo, initial_centers, lloyd_iteration
from kmeans import KMeans, _kernels
from kmeans.reference import update_centers
from sklearn.cluster import KMeans as SkKMeans
import photos
photo = Photo("mosaic12", photos.mosaic())
centers = initial_centers(photo, 10)
X, w = photo.X, np.ones(photo.n_pixels)
labels = np.full(len(X), -1)
_kernels.lloyd_step(X, w, centers, labels)
def best(f, n=5):
    ts = []
    for _ in range(n):
        t = time.perf_counter(); r = f(); ts.append(time.perf_counter() - t)
    return min(ts), r
t_step, (sum_x, nk, inertia, _) = best(lambda: _kernels.lloyd_step(X, w, centers, labels))
t_assign, _ = best(lambda: _kernels.assign_labels(X, w, centers))
t_upd, _ = best(lambda: update_centers(X, w, centers, labels, sum_x, nk))
print(f"lloyd_step kernel {t_step*1e3:.0f} ms (assignment alone {t_assign*1e3:.0f} ms), update_centers {t_upd*1e3:.1f} ms")
ours = lambda m: KMeans(10, init=centers, n_init=1, max_iter=m, tol=0.0)
theirs = lambda m: SkKMeans(10, init=centers, n_init=1, max_iter=m, tol=0.0, algorithm="lloyd")
for n_threads in (1, 2):  # numba's threads for emseg, OpenMP and BLAS for scikit-learn
    numba.set_num_threads(n_threads)
    with threadpool_limits(n_threads):
        o, t = [], []
        for _ in range(5):  # interleaved
            o.append(lloyd_iteration(ours, X, None, 5)[0][0])
            t.append(lloyd_iteration(theirs, X, None, 5)[0][0])
    print(f"per Lloyd iteration, {n_threads} thread(s) each: emseg {np.median(o)*1e3:.0f} ms, "
          f"sklearn {np.median(t)*1e3:.0f} ms -> {np.median(t)/np.median(o):.2f}x")
