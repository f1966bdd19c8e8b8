"""Markers for tests of one TransformerLens generation: 3.x builds ``HookedTransformer`` models (with TransformerLens's
own key-value cache), 4.x wraps models in a ``TransformerBridge`` (no TransformerLens cache; the fused forward or full
rows instead)."""

import pytest

from interp.bridge import tl_major, tl_version

#: Routes and internals that exist only on a ``HookedTransformer``.
tl3_only = pytest.mark.skipif(
    tl_major() >= 4,
    reason=f"HookedTransformer internals (TransformerLens 3.x); installed: transformer-lens {tl_version()}",
)
#: Architectures TransformerLens 3.x cannot convert.
bridge_only = pytest.mark.skipif(
    tl_major() < 4,
    reason=f"needs a TransformerBridge (TransformerLens 4.x); installed: transformer-lens {tl_version()}",
)
