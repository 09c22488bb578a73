"""The image application of emseg, for both estimators: everything between the files and `em` / `kmeans`.

``image``: pictures and decoding, distinct colours, palettes, painting, sampling, atomic writes.
``modelfile``: model.json, its schema and its checks. ``models``: the one place that tells a mixture
from k-means. ``learn``: the trace, the animation, the convergence plot and EM step by step.
``report``: the HTML page of a fit, iteration by iteration. ``batch``: image collections on Dask.
``smooth``: --smooth on the pixel grid and the soft maps.
"""
