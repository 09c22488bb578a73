"""Start-up of the ``emseg`` command: modules it imports only when they are used.

Measured on a 2-core machine (medians of 9 runs): ``import cli`` takes 0.75 s
with scipy.stats deferred and 1.35 s without; ``emseg segment`` on a 64x64
image, the whole process, 1.38 s and 1.99 s. Only cli.py calls this, before
anything imports scikit-learn; importing segment, em or kmeans never does.
"""

import importlib
import sys
import types


def defer_import(name):
    """Put off importing module ``name`` until something asks it for an attribute.

    scikit-learn imports scipy.stats as it starts (in sklearn.utils.fixes), for
    a module only `emseg compare` uses. A stand-in takes its place in
    sys.modules; the first attribute asked of it imports the real module, which
    replaces it. The same idea as Mercurial's demandimport, for one module, in
    this command's process only.
    """
    if name in sys.modules:
        return

    class Deferred(types.ModuleType):
        def __getattr__(self, attribute):
            if sys.modules.get(name) is self:
                del sys.modules[name]
            return getattr(importlib.import_module(name), attribute)

    sys.modules[name] = Deferred(name)
