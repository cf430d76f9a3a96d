"""Streaming target-speaker extractor conditioned on one face's mouth ROI (PyTorch); causal, or
with a fixed look-ahead of one or two chunks (v7).

Per call (one 40 ms chunk = CHUNK_FRAMES STFT frames = one video frame):
    inputs   mix  [B, 2, 4, 257]   compressed complex mixture (docs/SIGNAL.md)
             roi  [B, 1, 48, 48]   the chunk's mouth ROI (docs/SIGNAL.md "Mouth crop": grey / 255)
                                   (AV model only)
             state tensors, batch on axis 0 (see `state_shapes`)
    outputs  mask [B, 2, 4, 257]   AV: complex mask (re, im) for the UNcompressed mixture,
             mask [B, 2, 2, 4, 257]  audio-only: one complex mask per output (2 outputs, PIT),
             plus the new states.
Without look-ahead the mask of a chunk is final when its last frame is in (lookahead_frames = 0);
with `lookahead` = L (v7) a call returns the mask of the chunk given L calls earlier
(lookahead_frames = 4 L).

Architecture (v3; causal at chunk granularity: the recurrent part runs once per 40 ms chunk, the
rate of the calls and of the video, so its state costs 4x less than a per-frame RNN and gradients
cross 4x fewer steps; inside a chunk every frame's mask may use all 4 frames of that chunk, which
is what the chunked call already delivers: lookahead_frames stays 0):
  frame encoder  features [re, im, |.|] of the compressed mixture (771 per frame) -> Linear(-> E)
                 -> LayerNorm -> ReLU;
  chunk encoder  the chunk's 4 encoded frames concatenated -> Linear(-> H) -> LayerNorm -> ReLU;
  visual encoder 4 strided 3x3 convs on [roi - 0.5, roi - previous roi] (previous ROI is state
                 "prev_roi"; 48 -> 24 -> 12 -> 6 -> 3), flattened (the mouth's shape is spatial:
                 no global pooling) -> Linear(-> V) -> tanh. A training-only head (`aux`, not exported)
                 predicts the target's energy in the next chunk from V, so the encoder learns to
                 read the mouth before the separator relies on it;
  fusion         GRU(H + V -> H), `gru_layers` layers, one step per chunk (state "gru" [B, layers, H]);
  frame decoder  Linear(H -> 4 x E) + tanh gives each frame of the chunk a vector, concatenated with
                 that frame's encoding (skip) -> `post_blocks` residual per-frame MLP blocks
                 (v4) -> Linear(2E -> 514 x outputs), mask = 2 tanh(.).
                 (tanh, not ReLU, where a layer is the only path from the GRU or the face: in the
                 first v3 run every ReLU unit of that layer died within 800 steps, which cut the
                 GRU and the face off and left a frame-by-frame mask through the skip.)
v4 adds the per-frame blocks, z + W2 relu(W1 LayerNorm(z)) with W2 zero at initialisation (so a
v3 checkpoint loads into v4 and computes the same mask). Why: v3 underfits (its training loss on
fresh mixtures equals its validation loss, and both flatten near 5 dB); its only per-frame
nonlinearity between the context (GRU) and the frame's spectrum is the mask's tanh, while
keeping one voice's harmonics needs the context to gate the frame's spectrum.
v4s ("select", AV only): the decoder computes TWO complex masks, as the audio-only model does, and
a per-frame head weighs (mask 0, mask 1, nothing) for this face with a softmax; the call still
returns one mask. Training adds a permutation-invariant term on the two internal masks against
(the face's voice, the rest of the mixture), so the separator learns to split voices from the
first step, whether or not the face has yet been understood; the face only has to learn which
output is its own. It starts from an audio-only model's weights (model_setup.init_select).
The audio-only baseline ("audio") cannot know which voice a face has, so it separates blindly:
the same encoders and GRU (input H: no visual features), and a decoder with TWO complex masks,
trained with permutation-invariant training (best assignment of its 2 outputs to the 2 voices).
Its wider last layer roughly offsets the AV model's visual encoder and wider GRU input: parameter
counts within 10 % of each other (tests/test_model.py).

v5 (`band_head` > 0, an experiment so far): a per-frame head that works along frequency. Every
mask so far came from one Linear of a 384-wide frame vector, which sees the spectrum only through
the 192-wide frame encoding: it cannot make a per-bin decision from the bin's own neighbourhood
(which harmonics lie where in this frame). The band head cuts the 257 bins into 17 bands of 16
(the last padded), gives each band its full-resolution features [re, im, |.|] (48) and a 32-wide
slice of the frame vector projected for it, runs a shared per-band layer (+ a band position
vector), one residual convolution across neighbouring bands (kernel 3) and a per-band output of
16 bins x (re, im) x masks, ADDED to the global head's logits before the tanh. Its output layer
starts at zero, so a v4/v4s checkpoint loads into v5 and computes the same masks. Per frame, no
state: streaming is unchanged (lookahead 0). Cost: ~270 MFLOP per second of audio.

v6 (`roi_norm`, AV only): the visual encoder reads each ROI with its own mean removed and its
contrast scaled to a fixed level (`roi_normalised`; the difference to the previous ROI with the
same factor). Every training face comes from one blurred 1927 photo, and the v4s encoder, which
read raw grey levels, failed on the held-out astronaut photo (bright, sharp): 0 dB there against
3-7 dB on the held-out Solvay faces. No parameters and no state: the input contract (grey / 255)
is unchanged, and a v4s checkpoint loads as it is. Training pairs it with a random camera per
sequence (training/roi_augment.py).

v7 (`lookahead` = L chunks, 0-2): the mask of chunk t is computed one call per chunk later, L
calls after its last frame came in (lookahead_frames = 4 L: 40 or 80 ms; the issue allows up to
80 ms). A causal model must decide a frame's mask before it hears how the syllable goes on; with
L chunks more, the frame decoder sees the GRU's outputs of chunks t .. t + L: its input becomes
tanh(up(h_t) + sum_k ahead_k(h_(t+k))), with each `ahead_k` starting at zero, so a v6 checkpoint
loads and computes the same masks, L chunks late. Streaming keeps the last L GRU outputs and
the last 4 L frame encodings as state ("h_hist", "e_hist"). Whole utterances are padded at the
end with L chunks of zero input (and the last ROI repeated): the same as streaming L such
chunks after the last one. Cost: L x 2 x 384 x 768 per chunk, 15 MFLOP per second each.

v7w (`gru_hidden` > `hidden`): a wider recurrence than the chunk encoder. The GRU steps once per
40 ms, so its width costs little per second of audio (640 wide: +145 MFLOP/s; 7.7 M parameters
with v6 and 80 ms look-ahead, against 4.4 M) while the per-frame
parts, which run 4x as often, stay. A trained model widens into it without changing what it
computes (`widen_state_dict`): the old units keep their weights and see none of the new ones,
whose outgoing weights start at zero.

`forward_sequence` processes whole utterances in parallel layers (nn.GRU over all chunks); the
streaming `forward` processes one chunk with explicit state; tests check they agree.
"""

from __future__ import annotations

import torch
from torch import nn

from .mouth_crop import ROI_SIZE  # docs/SIGNAL.md "Mouth crop"
from .signal import CHUNK_FRAMES, N_BINS

AUDIO_OUTPUTS = 2
MASK_BOUND = 2.0
MAX_LOOKAHEAD = 2  # chunks: 80 ms


class FrameBlock(nn.Module):
    """Residual per-frame MLP z + W2 relu(W1 LayerNorm(z)); W2 starts at zero (the identity)."""

    def __init__(self, dim: int, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.inner = nn.Linear(dim, width)
        self.outer = nn.Linear(width, dim)
        with torch.no_grad():
            self.outer.weight.zero_()
            self.outer.bias.zero_()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z + self.outer(torch.relu(self.inner(self.norm(z))))


BAND = 16  # bins per band of the v5 band head
BAND_CTX = 32  # width of the frame vector's projection per band


class BandHead(nn.Module):
    """v5: per-band logits from each band's own spectrum and the frame vector (see the module doc).
    z [B, T, D], feats [B, T, F, 3] -> logits [B, T, n_masks * 2 * F] in the global head's layout."""

    def __init__(self, dim: int, n_masks: int, width: int):
        super().__init__()
        self.n_masks, self.width = n_masks, width
        self.n_bands = -(-N_BINS // BAND)
        self.ctx = nn.Linear(dim, self.n_bands * BAND_CTX)
        self.inp = nn.Linear(3 * BAND + BAND_CTX, width)
        self.pos = nn.Parameter(torch.zeros(self.n_bands, width))
        self.across = nn.Conv1d(width, width, 3, padding=1)
        self.out = nn.Linear(width, n_masks * 2 * BAND)
        with torch.no_grad():
            self.out.weight.zero_()
            self.out.bias.zero_()

    def forward(self, z: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        B, T, F, _ = feats.shape
        nb = self.n_bands
        f = torch.nn.functional.pad(feats, (0, 0, 0, nb * BAND - F)).reshape(B, T, nb, BAND * 3)
        c = self.ctx(z).reshape(B, T, nb, BAND_CTX)
        y = torch.relu(self.inp(torch.cat([f, c], dim=3)) + self.pos)  # [B, T, nb, W]
        a = self.across(y.reshape(B * T, nb, self.width).transpose(1, 2)).transpose(1, 2)
        y = y + torch.relu(a).reshape(B, T, nb, self.width)
        o = self.out(y).reshape(B, T, nb, self.n_masks, 2, BAND).permute(0, 1, 3, 4, 2, 5)
        return o.reshape(B, T, self.n_masks, 2, nb * BAND)[..., :F].reshape(B, T, self.n_masks * 2 * F)


ROI_NORM_STD = 0.2  # a typical training ROI's contrast (grey / 255): normalised inputs keep v4s's scale
ROI_NORM_EPS = 0.01  # contrast floor: a flat crop's camera noise is not blown up


def roi_normalised(roi: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
    """v6 visual input: [roi, roi - prev] with the ROI's own mean removed and its contrast
    scaled to ROI_NORM_STD (the difference with the same factor, so motion keeps its size
    relative to the picture). Invariant to a camera's brightness and contrast (x -> a x + b on
    both frames), which the held-out astronaut photo showed the v4s encoder was not."""
    mu = roi.mean(dim=(1, 2, 3), keepdim=True)
    sd = torch.sqrt(((roi - mu) ** 2).mean(dim=(1, 2, 3), keepdim=True) + ROI_NORM_EPS ** 2)
    scale = ROI_NORM_STD / sd
    return torch.cat([(roi - mu) * scale, (roi - prev) * scale], dim=1)


# ---------------------------------------------------------------- the mouth reader
# Shared by Separator and the v13 BandSeparator (training/band_model.py): the same layers under
# the same names (vis.*, vis_fc.*), so one model's trained encoder loads into the other.
MOUTH_FEATURES = 64 * 3 * 3  # the last convolution's output, flattened


def mouth_encoder() -> nn.Sequential:
    """4 strided 3x3 convolutions on the 2-channel ROI input: 48 -> 24 -> 12 -> 6 -> 3."""
    return nn.Sequential(
        nn.Conv2d(2, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(32, 48, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(48, 64, 3, stride=2, padding=1), nn.ReLU(),
    )


def read_mouths(model: nn.Module, roi: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
    """roi, prev [N, 1, 48, 48] -> visual features [N, V], through `model.vis` and `model.vis_fc`
    (normalised per ROI when `model.roi_norm`)."""
    x = roi_normalised(roi, prev) if model.roi_norm else torch.cat([roi - 0.5, roi - prev], dim=1)
    # channels-last: oneDNN's convolutions on few channels are ~3x faster backwards in that layout
    # (a training step of the shipped AV model 12 % faster on one CPU thread; the same values to
    # ~2e-7). The flattened features below come out in the usual order either way.
    x = x.contiguous(memory_format=torch.channels_last)
    return torch.tanh(model.vis_fc(model.vis(x).flatten(1)))


def read_mouth_sequence(model: nn.Module, rois: torch.Tensor) -> torch.Tensor:
    """rois [B, n, 1, 48, 48] -> [B, n, V], each ROI with the one before it (zeros before the
    first), as a stream's calls see them."""
    B, n = rois.shape[:2]
    prev = torch.cat([torch.zeros_like(rois[:, :1]), rois[:, :-1]], dim=1)
    return read_mouths(model, rois.reshape(B * n, 1, ROI_SIZE, ROI_SIZE),
                       prev.reshape(B * n, 1, ROI_SIZE, ROI_SIZE)).reshape(B, n, -1)


def mouth_reader_macs(visual_dim: int) -> int:
    """Multiply-adds of one ROI through the mouth reader."""
    return ((16 * 2 * 9 * 24 * 24) + (32 * 16 * 9 * 12 * 12) + (48 * 32 * 9 * 6 * 6)
            + (64 * 48 * 9 * 3 * 3) + MOUTH_FEATURES * visual_dim)


class Separator(nn.Module):
    def __init__(self, kind: str = "av", hidden: int = 384, visual_dim: int = 64, frame_dim: int = 192,
                 gru_layers: int = 2, post_blocks: int = 0, post_width: int = 512, select: bool = False,
                 band_head: int = 0, roi_norm: bool = False, lookahead: int = 0, gru_hidden: int | None = None):
        super().__init__()
        if kind not in ("av", "audio"):
            raise ValueError(kind)
        if select and kind != "av":
            raise ValueError("select applies to the AV model only")
        if not 0 <= lookahead <= MAX_LOOKAHEAD:
            raise ValueError(f"lookahead {lookahead} chunks: 0 to {MAX_LOOKAHEAD} (80 ms)")
        self.kind, self.hidden, self.visual_dim, self.frame_dim = kind, hidden, visual_dim, frame_dim
        self.lookahead = lookahead
        self.gru_hidden = gru_hidden or hidden  # the recurrence's width (v7w: wider than the chunk encoder)
        self.layers = gru_layers
        self.post_blocks, self.post_width = post_blocks, post_width
        self.enc = nn.Linear(3 * N_BINS, frame_dim)
        self.enc_norm = nn.LayerNorm(frame_dim)
        self.chunk = nn.Linear(CHUNK_FRAMES * frame_dim, hidden)
        self.chunk_norm = nn.LayerNorm(hidden)
        if kind == "av":
            self.vis = mouth_encoder()
            self.vis_fc = nn.Linear(MOUTH_FEATURES, visual_dim)
            self.aux = nn.Linear(visual_dim, 1)  # training only: target energy of the next chunk
        self.roi_norm = roi_norm and kind == "av"
        self.select = select
        self.n_out = 1 if kind == "av" else AUDIO_OUTPUTS  # masks a call returns
        self.n_masks = AUDIO_OUTPUTS if (kind == "audio" or select) else 1  # masks the head computes
        self.gru_in = hidden + (visual_dim if kind == "av" else 0)
        self.gru = nn.GRU(self.gru_in, self.gru_hidden, num_layers=gru_layers, batch_first=True)
        self.up = nn.Linear(self.gru_hidden, CHUNK_FRAMES * frame_dim)
        # v7: what the next `lookahead` chunks add to chunk t's frame vectors; zero at first (v6)
        self.ahead = nn.ModuleList(nn.Linear(self.gru_hidden, CHUNK_FRAMES * frame_dim, bias=False) for _ in range(lookahead))
        for lin in self.ahead:
            nn.init.zeros_(lin.weight)
        self.post = nn.ModuleList(FrameBlock(2 * frame_dim, post_width) for _ in range(post_blocks))
        self.head = nn.Linear(2 * frame_dim, self.n_masks * 2 * N_BINS)
        self.band_head = band_head
        if band_head and lookahead:
            raise ValueError("band_head with lookahead: the band head's features have no history state")
        self.band = BandHead(2 * frame_dim, self.n_masks, band_head) if band_head else None
        if select:
            # per frame: weights of (internal mask 0, internal mask 1, nothing) for this face;
            # zero at initialisation (a third of each)
            self.sel = nn.Linear(2 * frame_dim, 3)
            nn.init.zeros_(self.sel.weight)
            nn.init.zeros_(self.sel.bias)
        # start near the identity mask (real part 1, imaginary 0): the first estimates are the
        # mixture (SI-SDRi 0 dB) instead of random filtered noise
        with torch.no_grad():
            self.head.weight.mul_(0.1)
            bias = self.head.bias.view(self.n_masks, 2, N_BINS)
            bias.zero_()
            bias[:, 0] = float(torch.atanh(torch.tensor(1.0 / MASK_BOUND)))

    # ---------------------------------------------------------------- state
    def state_shapes(self, batch: int) -> dict[str, tuple[int, ...]]:
        s = {"gru": (batch, self.layers, self.gru_hidden)}
        if self.kind == "av":
            s["prev_roi"] = (batch, 1, ROI_SIZE, ROI_SIZE)
        if self.lookahead:
            s["h_hist"] = (batch, self.lookahead, self.gru_hidden)
            s["e_hist"] = (batch, self.lookahead * CHUNK_FRAMES, self.frame_dim)
        return s

    @property
    def lookahead_frames(self) -> int:
        return self.lookahead * CHUNK_FRAMES

    def initial_state(self, batch: int) -> dict[str, torch.Tensor]:
        return {k: torch.zeros(v) for k, v in self.state_shapes(batch).items()}

    # ---------------------------------------------------------------- pieces
    def _frames_in(self, mix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """[B, 2, T, F] -> (encoded frames [B, T, E], encoded chunks [B, T / 4, H], and for the band
        head the per-bin features [B, T, F, 3], else None)."""
        B, _, T, _ = mix.shape
        mag = torch.sqrt(mix[:, 0] ** 2 + mix[:, 1] ** 2 + 1e-8)  # [B, T, F]
        x = torch.cat([mix[:, 0], mix[:, 1], mag], dim=2)
        e = torch.relu(self.enc_norm(self.enc(x)))
        c = e.reshape(B, T // CHUNK_FRAMES, CHUNK_FRAMES * self.frame_dim)
        feats = torch.stack([mix[:, 0], mix[:, 1], mag], dim=3) if self.band is not None else None
        return e, torch.relu(self.chunk_norm(self.chunk(c))), feats

    def _mask(self, h: torch.Tensor, e: torch.Tensor, feats: torch.Tensor | None = None):
        """GRU output [B, n + lookahead, H] and frame encodings [B, 4 n, E] -> (mask [B, 2, T, F] (AV) or
        [B, 2 outputs, 2, T, F] (audio), and for the AV model with select its two internal masks
        [B, 2, 2, T, F], else None)."""
        B = h.shape[0]
        n = e.shape[1] // CHUNK_FRAMES  # h has n + lookahead chunks (v7)
        pre = self.up(h[:, :n])
        for k, lin in enumerate(self.ahead, start=1):
            pre = pre + lin(h[:, k:k + n])
        u = torch.tanh(pre).reshape(B, n * CHUNK_FRAMES, self.frame_dim)
        z = torch.cat([u, e], dim=2)
        for block in self.post:
            z = block(z)
        logits = self.head(z)
        if self.band is not None:
            logits = logits + self.band(z, feats)
        m = MASK_BOUND * torch.tanh(logits)
        T = n * CHUNK_FRAMES
        if self.kind == "av" and not self.select:
            return m.reshape(B, T, 2, N_BINS).permute(0, 2, 1, 3), None
        ms = m.reshape(B, T, self.n_masks, 2, N_BINS)
        if self.kind == "audio":
            return ms.permute(0, 2, 3, 1, 4), None
        p = torch.softmax(self.sel(z), dim=-1)[..., None, None]  # [B, T, 3, 1, 1]
        mask = (p[:, :, 0] * ms[:, :, 0] + p[:, :, 1] * ms[:, :, 1]).permute(0, 2, 1, 3)
        return mask, ms.permute(0, 2, 3, 1, 4)

    # ---------------------------------------------------------------- streaming call
    def forward(self, mix, *args):
        """AV: forward(mix, roi, gru, prev_roi[, h_hist, e_hist]); audio: forward(mix, gru[, h_hist,
        e_hist]) (the histories with lookahead, v7). Returns (mask, gru'[, prev_roi'][, h_hist',
        e_hist']); with lookahead L the mask is that of the chunk given L calls earlier."""
        mask, out, _ = self.step(mix, *args)
        return (mask, *out)

    def step(self, mix, *args):
        """`forward`'s mask and new states, and (AV) the face's visual features [B, V] of this
        call, else None (the fused separators, training/fusion*.py, read them too)."""
        v = None
        if self.kind == "av":
            roi, gru, prev, *hist = args
        else:
            gru, *hist = args
        e, c, feats = self._frames_in(mix)  # c [B, 1, H]
        if self.kind == "av":
            v = read_mouths(self, roi, prev)
            c = torch.cat([c, v[:, None, :]], dim=2)
        h, g = self.gru(c, gru.transpose(0, 1).contiguous())
        out = [g.transpose(0, 1)] + ([roi] if self.kind == "av" else [])
        if self.lookahead:
            h_hist, e_hist = hist
            h = torch.cat([h_hist, h], dim=1)  # chunks t - L .. t
            e = torch.cat([e_hist, e], dim=1)
            out += [h[:, 1:], e[:, CHUNK_FRAMES:]]
            e = e[:, :CHUNK_FRAMES]  # chunk t - L's frames
        mask, _ = self._mask(h, e, feats)
        return mask, out, v

    # ---------------------------------------------------------------- whole utterance
    def forward_sequence(self, mix: torch.Tensor, rois: torch.Tensor | None = None, with_aux: bool = False):
        """mix [B, 2, T, F] with T = 4 x chunks; rois [B, chunks, 1, 48, 48] -> mask [B, 2, T, F]
        (audio: rois None -> mask [B, 2 outputs, 2, T, F]).
        Same result as calling `forward` chunk by chunk from the initial state.
        with_aux (AV): also return the auxiliary energy prediction [B, chunks]."""
        mask, aux, _ = self.forward_parts(mix, rois)
        return (mask, aux) if with_aux and aux is not None else mask

    def forward_parts(self, mix: torch.Tensor, rois: torch.Tensor | None = None):
        """`forward_sequence`'s (mask, aux energy prediction or None, internal masks or None); the
        internal masks [B, 2, 2, T, F] exist for the AV model with select (training's PIT term)."""
        return self.sequence_parts(mix, rois)[:3]

    def sequence_parts(self, mix: torch.Tensor, rois: torch.Tensor | None = None):
        """`forward_parts` and (AV) the visual features of every call a stream makes
        [B, chunks + lookahead, V] (the last ROI repeated for the look-ahead calls), else None."""
        T = mix.shape[2]
        if self.lookahead:  # the stream goes on for L chunks of zero input, the face stays (v7)
            mix = torch.nn.functional.pad(mix, (0, 0, 0, self.lookahead_frames))
            if rois is not None:
                rois = torch.cat([rois] + [rois[:, -1:]] * self.lookahead, dim=1)
        e, c, feats = self._frames_in(mix)
        e = e[:, :T]
        v = None
        if self.kind == "av":
            v = read_mouth_sequence(self, rois)
            c = torch.cat([c, v], dim=2)
        h, _ = self.gru(c)
        mask, internal = self._mask(h, e, feats)
        n = T // CHUNK_FRAMES
        return mask, (self.aux(v[:, :n])[..., 0] if v is not None else None), internal, v


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def flops_per_second(model: Separator) -> float:
    """Multiply-adds x 2 per second of audio (100 frames, 25 chunks and ROI frames), counted
    analytically (the training-only aux head excluded)."""
    H, V, E, L = model.hidden, model.visual_dim, model.frame_dim, model.layers
    G = model.gru_hidden
    per_frame = (3 * N_BINS * E + 2 * E * 2 * N_BINS * model.n_masks + model.post_blocks * 2 * (2 * E) * model.post_width
                 + (2 * E * 3 if model.select else 0))
    gru = 3 * G * (model.gru_in + G) + (L - 1) * 3 * G * (2 * G)
    per_chunk = CHUNK_FRAMES * E * H + gru + (1 + model.lookahead) * G * CHUNK_FRAMES * E
    if model.kind == "av":
        per_chunk += mouth_reader_macs(V)
    if model.band is not None:
        W, nb = model.band_head, model.band.n_bands
        per_frame += (2 * E * nb * BAND_CTX + nb * (3 * BAND + BAND_CTX) * W + nb * 3 * W * W
                      + nb * W * model.n_masks * 2 * BAND)
    return 2.0 * (100 * per_frame + 25 * per_chunk)


# parameters whose shapes depend on the GRU's width (v7w)
_GRU_WIDTH_KEYS = ("gru.", "up.weight", "ahead.")


def widen_state_dict(model: Separator, sd: dict) -> dict:
    """A state dict of a model with a narrower GRU, embedded into `model`'s wider one so that the
    masks are unchanged: old units keep their weights (per gate block) and get zero weights from
    the new units; new units keep `model`'s own (random) incoming weights; whatever reads the GRU
    (`up`, `ahead`) gets zero columns for the new units. Other tensors must have equal shapes."""
    own = model.state_dict()
    G = model.gru_hidden
    out = {}
    for k, v in sd.items():
        w = own[k].clone()
        if v.shape == w.shape:
            out[k] = v
            continue
        if not k.startswith(_GRU_WIDTH_KEYS):
            raise ValueError(f"widen: {k} is {tuple(v.shape)} in the source, {tuple(w.shape)} here")
        if k.startswith(("up.", "ahead.")):  # [4E, g] -> [4E, G]
            w.zero_()
            w[:, : v.shape[1]] = v
        else:  # gru.weight_ih_lX [3g, in], weight_hh_lX [3g, g], biases [3g]
            g = v.shape[0] // 3
            for gate in range(3):
                rows = slice(gate * G, gate * G + g)
                src = v[gate * g:(gate + 1) * g]
                if v.dim() == 1:
                    w[rows] = src
                else:
                    reads_hidden = k.startswith("gru.weight_hh") or (k.startswith("gru.weight_ih") and not k.endswith("_l0"))
                    if reads_hidden:
                        w[rows] = 0.0  # old units: nothing from the new ones
                    w[rows, : src.shape[1]] = src
        out[k] = w
    return out

