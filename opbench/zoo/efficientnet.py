"""EfficientNet-B0: Tan and Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks", ICML 2019.

Read from timm's efficientnet.py (_gen_efficientnet, efficientnet_b0) and _efficientnet_blocks.py. Stem Conv3x3 s2 +
BN + SiLU, a depthwise-separable block, then MBConv inverted residuals (expand 6, depthwise 3x3 or 5x5) with
squeeze-excitation reducing to a quarter of the block's input width; SiLU throughout; head: 1x1 conv to 1280 + BN +
SiLU, mean, Linear. PyTorch-style symmetric padding (timm's efficientnet_b0, not the TF-padded tf_efficientnet_b0).
Downsampling happens inside the first (strided) block of a stage.
"""

from __future__ import annotations

from torch import nn

from opbench import blocks
from opbench.zoo.base import ZooModel
from opbench.zoo.mobilenetv2 import ConvHead

# (expansion, kernel, width, repeats, stride of the first block) per stage, the paper's Table 1
ARCH = (
    (1, 3, 16, 1, 1),
    (6, 3, 24, 2, 2),
    (6, 5, 40, 2, 2),
    (6, 3, 80, 3, 2),
    (6, 5, 112, 3, 1),
    (6, 5, 192, 4, 2),
    (6, 3, 320, 1, 1),
)
STEM_WIDTH, HEAD_WIDTH, SE_RATIO = 32, 1280, 0.25


class EfficientNet(nn.Module):
    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.stem = blocks.conv_norm_act(3, STEM_WIDTH, 3, 2, act=nn.SiLU)
        stages, c_in = [], STEM_WIDTH
        for expand, kernel, c_out, repeats, stride in ARCH:
            layers = []
            for j in range(repeats):
                s, se = stride if j == 0 else 1, round(c_in * SE_RATIO)
                if expand == 1:
                    layers.append(blocks.DepthwiseSeparable(c_in, c_out, kernel, s, nn.SiLU, se))
                else:
                    layers.append(blocks.InvertedResidual(c_in, c_out, kernel, s, expand, nn.SiLU, se))
                c_in = c_out
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.head = ConvHead(c_in, HEAD_WIDTH, nn.SiLU, num_classes)

    def forward(self, x):
        return self.head(self.stages(self.stem(x)))


MODELS = [
    ZooModel(
        name="efficientnet_b0",
        family="efficientnet",
        title="EfficientNet-B0",
        factory=EfficientNet,
        params_m=5.29,
        params_source="timm results/benchmark-infer-fp32-nchw-pt240-cpu-i9_10940x-dynamo.csv, efficientnet_b0 "
        "(param_count 5.29; the paper says 5.3M)",
        gmacs=0.39,
        gmacs_source="EfficientNet paper (Tan and Le 2019) Table 2: 0.39B FLOPs (multiply-adds)",
        top1=77.1,
        top1_source="EfficientNet paper Table 2",
        description="MBConv (expand 6, dw 3x3/5x5, squeeze-excitation), SiLU, compound-scaled baseline",
    ),
]
