"""Import neural-tangents 0.6.5 in the pinned side environment (run with its interpreter).

``neural_tangents.experimental`` only pulls in TensorFlow, so an empty module stands in for
it before the import.
"""

import sys
import types


def import_nt(x64: bool = True):
    sys.modules.setdefault("neural_tangents.experimental",
                           types.ModuleType("neural_tangents.experimental"))
    import jax

    jax.config.update("jax_enable_x64", bool(x64))
    import neural_tangents as nt
    from neural_tangents import stax

    return jax, nt, stax


def eval_spec(spec: str, stax):
    """Build a network from a lantk ``kernel_fn.spec`` string with neural-tangents' stax."""
    names = {n: getattr(stax, n) for n in dir(stax) if not n.startswith("_")}
    return eval(spec, {"__builtins__": {}}, names)
