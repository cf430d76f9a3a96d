"""diagnose.score_selection: the selected and internal masks are scored on the right signals."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from training.diagnose import score_selection  # noqa: E402
from training.model import MASK_BOUND, Separator  # noqa: E402


def _scenes(n_scenes=2, n=6400, seed=0):
    rng = np.random.default_rng(seed)
    src = (rng.standard_normal((n_scenes, 2, n)) * 0.05).astype(np.float32)
    return {"mixture": src.sum(1), "sources": src, "speaking": np.ones((n_scenes, 2), bool),
            "rois": rng.integers(0, 256, (n_scenes, 2, n // 640, 48, 48), dtype=np.uint8)}


def _model(identity_mask: int) -> Separator:
    """A tiny select model whose internal mask `identity_mask` is the identity (the mixture) and
    whose other internal mask halves the lower half of the spectrum."""
    torch.manual_seed(0)
    m = Separator("av", hidden=16, visual_dim=8, frame_dim=8, post_blocks=1, post_width=8, select=True).eval()
    with torch.no_grad():
        m.head.weight.zero_()
        bias = m.head.bias.view(2, 2, -1)
        bias.zero_()
        bias[:, 0] = float(torch.atanh(torch.tensor(1.0 / MASK_BOUND)))
        bias[1 - identity_mask, 0, :128] = float(torch.atanh(torch.tensor(0.5 / MASK_BOUND)))
    return m


@pytest.mark.parametrize("identity_mask", [0, 1])
def test_selection_scores(identity_mask):
    data = _scenes()
    m = _model(identity_mask)
    with torch.no_grad():
        m.sel.bias.copy_(torch.tensor([20.0, 0.0, 0.0]))  # always select internal mask 0
    out = score_selection(m, data)
    assert out["faces"] == 4
    r = out["si_sdri_2spk"]
    # the identity mask returns the mixture: 0 dB improvement; the filtered one is worse
    assert r[f"internal_{identity_mask}"] == pytest.approx(0.0, abs=1e-3)
    assert r[f"internal_{1 - identity_mask}"] < -0.1
    assert r["best_internal"] == pytest.approx(0.0, abs=1e-3)
    assert r["selected"] == pytest.approx(r["internal_0"], abs=1e-3)
