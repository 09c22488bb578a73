"""Start-up of the ``emseg`` command: modules others import at start-up that it imports only when used.

scipy.stats, which scikit-learn imports as it starts (0.6-0.9 s; `demo`,
`compare` and `batch` import scikit-learn, only `compare` uses scipy.stats);
yaml, which numba imports for a config file that is hardly ever there; and
scipy.linalg.cython_blas, which numba imports on its first cached kernel to see
that BLAS is there, and with it all of scipy.linalg. Only cli.py calls this,
first thing; importing segment, em or kmeans never does.
"""

import importlib
import sys
import types


def defer_import(name):
    """Put off importing module ``name`` until something asks it for an attribute.

    A stand-in takes its place in sys.modules, so ``import name`` finds it
    (without importing the parent packages of a submodule); the first attribute
    asked of it imports the real module, which replaces it. The same idea as
    Mercurial's demandimport, for a few modules, in this command's process only.
    """
    if name in sys.modules:
        return

    class Deferred(types.ModuleType):
        def __getattr__(self, attribute):
            if sys.modules.get(name) is self:
                del sys.modules[name]
            return getattr(importlib.import_module(name), attribute)

    sys.modules[name] = Deferred(name)
