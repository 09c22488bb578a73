"""A target for py-spy: emseg's default fits, repeated, as the image pipeline makes them.

    py-spy record -r 100 -f raw -o fit.txt -- python benchmarks/profiles/pipeline_fit.py IMAGE gmm-distinct 3
    python benchmarks/profiles/summarise.py fit.txt distinct_colors GaussianMixture.fit _run_em _initial

MODEL is gmm-all, gmm-distinct or kmeans-distinct.
"""
import sys, warnings
warnings.simplefilter("ignore")
from em import GaussianMixture
from kmeans import KMeans
from segment import image
path, model, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
picture = image.load(path)
X = picture.rgb.reshape(-1, 3).astype(float)
for seed in range(repeats):
    if model == "gmm-all":
        GaussianMixture(10, random_state=seed).fit(X)
    elif model == "gmm-distinct":
        colors, counts, inverse = image.distinct_colors(picture.rgb)
        GaussianMixture(10, random_state=seed).fit(colors, sample_weight=counts)
    elif model == "kmeans-distinct":
        colors, counts, inverse = image.distinct_colors(picture.rgb)
        KMeans(10, random_state=seed).fit(colors, sample_weight=counts)
