"""The lip-reading network: a spatiotemporal conv front end, a lip-shape MLP, a BiGRU, CTC output."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of the network."""

    height: int = 48  # crop height the model takes
    width: int = 96  # crop width
    in_channels: int = 1  # 1 for grey crops, 3 for colour
    # lip-point features per frame: 40 points x 2, x 3 with depth (core.crop.point_features)
    num_points: int = 80
    num_classes: int = 28  # vocabulary size, blank included
    channels: tuple[int, int, int] = (32, 48, 64)  # conv widths of the three stride-2 stages
    trunk_time: int = 1  # temporal kernel of each trunk block's first conv (odd; 1: per frame)
    visual_dim: int = 256  # per-frame visual feature size after the flattened conv map
    points_dim: int = 64  # per-frame lip-shape feature size
    hidden: int = 256  # GRU hidden size per direction
    layers: int = 2  # GRU layers
    dropout: float = 0.3  # dropout on features and between GRU layers

    def to_dict(self) -> dict:
        return asdict(self)


def resize_input(weights: dict, old: ModelConfig, new: ModelConfig) -> dict:
    """`weights` of a network for `old`'s crop size, carried over to `new`'s (all else the same).

    The convolutions take any size; only the layer on the flattened conv map depends on it. Its
    weights, one (H/8, W/8) map per output feature and channel, are resampled to the new map and
    scaled by the area ratio, so a feature summed over the same part of the face stays the same
    size. The network then sees the same face at another scale: a starting point for fine-tuning.
    """
    (oh, ow), (nh, nw) = (old.height // 8, old.width // 8), (new.height // 8, new.width // 8)
    key, channels = "visual.1.weight", old.channels[-1]
    maps = weights[key].reshape(-1, channels, oh, ow)
    resized = F.interpolate(maps.float(), size=(nh, nw), mode="bilinear", align_corners=False)
    return {**weights, key: (resized * (oh * ow) / (nh * nw)).reshape(maps.shape[0], -1).to(maps.dtype)}


def to_depth(weights: dict, num_points: int) -> dict:
    """`weights` of a network taking the lip points' x, y, carried over to one that takes their depth
    too (`num_points` features, the depths after the x, y: core.crop.normalise_points).

    The lip-shape MLP's first layer gets zero weights for the new features, so the network computes
    what it did, whatever the depths, and can learn what they add.
    """
    key = "points.0.weight"
    old = weights[key]
    extra = old.new_zeros(old.shape[0], num_points - old.shape[1])
    return {**weights, key: torch.cat([old, extra], dim=1)}


# OpenCV's BGR-to-grey weights (ITU-R BT.601), in the order of the colour crops' channels
GREY_FROM_BGR = (0.114, 0.587, 0.299)


def to_colour(weights: dict) -> dict:
    """`weights` of a network for grey crops, carried over to colour (BGR) crops.

    The stem's kernel for the one grey channel is split over B, G and R in the proportions grey is
    made of, so on any colour crop the network computes what it did on that crop turned grey (the
    normalisation subtracts the same mean from every channel, and the proportions sum to 1). It
    then starts where the grey model was and can learn what colour adds.
    """
    key = "stem.0.weight"
    grey = weights[key]
    split = torch.tensor(GREY_FROM_BGR, dtype=grey.dtype).view(1, 3, 1, 1, 1)
    return {**weights, key: grey * split}


TRUNK_FIRST_CONVS = ("trunk.0.0.weight", "trunk.1.0.weight")  # the convs trunk_time widens
TRUNK_CONVS = (*TRUNK_FIRST_CONVS, "trunk.0.3.weight", "trunk.1.3.weight")


def to_temporal(weights: dict, time: int) -> dict:
    """`weights` of a network whose trunk blocks see fewer frames (per frame, or a smaller odd
    ModelConfig.trunk_time), carried over to `time` frames.

    Each kernel is padded with zeros in time, the old one in the middle, so the network computes
    what it did and can learn what the added frames bring.
    """
    out = dict(weights)
    for key in TRUNK_CONVS:
        kernel = weights[key] if weights[key].dim() == 5 else weights[key].unsqueeze(2)  # (out, in, t, 3, 3)
        if key in TRUNK_FIRST_CONVS:
            pad = (time - kernel.shape[2]) // 2
            kernel = F.pad(kernel, (0, 0, 0, 0, pad, pad))
        out[key] = kernel
    return out


def _block(cin: int, cout: int, stride: int, time: int = 1) -> nn.Sequential:
    """Two 3x3 convs, the first with `stride`; per frame at `time` 1, else 3-D on (N, C, T, H, W)
    with a temporal kernel of `time` in the first."""
    if time == 1:
        conv, norm = nn.Conv2d, nn.BatchNorm2d
        first, second = dict(kernel_size=3, stride=stride, padding=1), dict(kernel_size=3, padding=1)
    else:
        conv, norm = nn.Conv3d, nn.BatchNorm3d
        first = dict(kernel_size=(time, 3, 3), stride=(1, stride, stride), padding=(time // 2, 1, 1))
        second = dict(kernel_size=(1, 3, 3), padding=(0, 1, 1))
    return nn.Sequential(
        conv(cin, cout, bias=False, **first),
        norm(cout),
        nn.ReLU(inplace=True),
        conv(cout, cout, bias=False, **second),
        norm(cout),
        nn.ReLU(inplace=True),
    )


class LipNet(nn.Module):
    """video (N, T, H, W[, C]) + points (N, T, num_points) -> log-probs (N, T, num_classes)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c1, c2, c3 = cfg.channels
        # a temporal kernel of 5 in the stem sees lip motion; later stages are per frame
        self.stem = nn.Sequential(
            nn.Conv3d(cfg.in_channels, c1, (5, 5, 5), (1, 2, 2), (2, 2, 2), bias=False),
            nn.BatchNorm3d(c1),
            nn.ReLU(inplace=True),
        )
        # per frame, or with a temporal kernel in each block's first conv (trunk_time)
        self.trunk = nn.Sequential(_block(c1, c2, 2, cfg.trunk_time), _block(c2, c3, 2, cfg.trunk_time))
        fh, fw = cfg.height // 8, cfg.width // 8
        self.visual = nn.Sequential(
            nn.Dropout(cfg.dropout), nn.Linear(c3 * fh * fw, cfg.visual_dim), nn.ReLU(inplace=True)
        )
        self.points = nn.Sequential(
            nn.Linear(cfg.num_points, 128),
            nn.ReLU(inplace=True),
            nn.Linear(128, cfg.points_dim),
            nn.ReLU(inplace=True),
        )
        self.gru = nn.GRU(
            cfg.visual_dim + cfg.points_dim,
            cfg.hidden,
            cfg.layers,
            batch_first=True,
            bidirectional=True,
            dropout=cfg.dropout,
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(2 * cfg.hidden, cfg.num_classes)

    @property
    def context(self) -> int:
        """Frames either side of a frame that its features depend on (the convs' temporal padding)."""
        return self.stem[0].padding[0] + 2 * (self.cfg.trunk_time // 2)

    @property
    def feature_dim(self) -> int:
        """Size F of the per-frame features `encode` returns (visual + lip-shape)."""
        return self.cfg.visual_dim + self.cfg.points_dim

    def encode(self, video: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """Per-frame features: video (N, T, H, W[, C]) + points (N, T, num_points) -> (N, T, F).

        Everything before the GRU. The stem's temporal kernel of 5 is zero-padded by 2 frames on
        each side, and a trunk block's of `trunk_time` by trunk_time // 2, so a frame's features
        depend on the frames up to `context` before and after it only.
        """
        if video.dim() == 4:
            video = video.unsqueeze(-1)
        n, t = video.shape[:2]
        x = self.stem(video.permute(0, 4, 1, 2, 3))  # (N, C, T, H/2, W/2)
        if self.cfg.trunk_time > 1:
            x = self.trunk(x).transpose(1, 2).flatten(0, 1)  # (N*T, C3, H/8, W/8)
        else:
            x = self.trunk(x.transpose(1, 2).flatten(0, 1))  # per frame: (N*T, C3, H/8, W/8)
        x = self.visual(x.flatten(1)).view(n, t, -1)
        return torch.cat([x, self.points(points)], dim=-1)

    def sequence(self, features: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """The BiGRU: features (N, T, F) -> states (N, T, 2 * hidden)."""
        x, t = features, features.shape[1]
        if lengths is not None:
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            return pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=t)[0]
        return self.gru(x)[0]

    def decode_features(self, features: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """The BiGRU and the output layer: features (N, T, F) -> log-probs (N, T, num_classes)."""
        return self.head(self.drop(self.sequence(features, lengths))).log_softmax(-1)

    def forward(
        self, video: torch.Tensor, points: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.decode_features(self.encode(video, points), lengths)


WORD_SOURCES = ("states", "features")  # what a WordReader's layer reads


class WordReader(nn.Module):
    """A LipNet with a second output for training: the word said on each frame, read by a linear layer
    (the word loss, TrainConfig.word_weight) from the BiGRU's states, which see the whole sample, or
    from the per-frame features before it, which see `net.context` frames either side (`source`).
    Only `net` is exported."""

    def __init__(self, net: LipNet, num_words: int, source: str = "states") -> None:
        super().__init__()
        if source not in WORD_SOURCES:
            raise ValueError(f"unknown word source {source!r}: choose one of {', '.join(WORD_SOURCES)}")
        self.net, self.source = net, source
        self.words = nn.Linear(2 * net.cfg.hidden if source == "states" else net.feature_dim, num_words)

    def forward(
        self, video: torch.Tensor, points: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """-> log-probs (N, T, num_classes) and word logits (N, T, num_words)."""
        features = self.net.encode(video, points)
        states = self.net.drop(self.net.sequence(features, lengths))
        read = states if self.source == "states" else self.net.drop(features)
        return self.net.head(states).log_softmax(-1), self.words(read)


def model_weights(checkpoint: dict) -> dict:
    """The weights a checkpoint stands for (what is validated, exported, fine-tuned from and taught
    with): the moving average when the run kept one, else the trained weights."""
    return checkpoint["ema"] if "ema" in checkpoint else checkpoint["model"]
