"""Loading images from several threads at once, as dask workers do: each load has its own pixel limit."""

import threading

import numpy as np
from PIL import Image

from segment import image


def test_two_threads_with_different_limits_never_touch_pillows_global(tmp_path):
    path = tmp_path / "600.png"
    Image.fromarray(np.zeros((20, 30, 3), dtype=np.uint8)).save(path)
    pillow_limit = Image.MAX_IMAGE_PIXELS
    seen, results, done = set(), {"low": [], "none": []}, threading.Event()

    def watch():  # samples the global while the loads run
        while not done.is_set():
            seen.add(Image.MAX_IMAGE_PIXELS)

    def load_many(name, max_pixels):
        for _ in range(200):
            try:
                results[name].append(image.load(path, max_pixels=max_pixels).rgb.shape)
            except image.ImageError as error:
                results[name].append(str(error))

    threads = [threading.Thread(target=load_many, args=("low", 100)), threading.Thread(target=load_many, args=("none", None))]
    watcher = threading.Thread(target=watch)
    watcher.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    watcher.join()
    assert all("600 pixels, more than the limit of 100" in result for result in results["low"])
    assert results["none"] == [(20, 30, 3)] * 200
    assert seen == {pillow_limit} and Image.MAX_IMAGE_PIXELS == pillow_limit
