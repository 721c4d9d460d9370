"""Deterministic conv nets of the conv tasks, written here (torchvision is not a dependency).

Small-input variants, as the CIFAR literature uses them: LeNet-5 for 1x28x28 MNIST; VGG-11 and
ResNet-18 for 3x32x32 CIFAR-10 (3x3 stem without max-pool, global average pool, one Linear head;
the layout of the widely used kuangliu/pytorch-cifar models). `width` scales every channel count
(64 is the standard ResNet-18 / VGG-11): the tests use narrow copies of the same architectures.
Each factory returns a plain `nn.Module`; `bnn_impls.bayesify` makes it Bayesian.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn


class LeNet5(nn.Module):
    """conv5x5(6, pad 2) - pool - conv5x5(16) - pool - 120 - 84 - classes, ReLU activations."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.flatten(-3)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


# conv widths in multiples of `width`, "M" a max-pool
VGG11_CHANNELS = (1, "M", 2, "M", 4, 4, "M", 8, 8, "M", 8, 8, "M")


class VGG11(nn.Module):
    """VGG-11 with BatchNorm for 32x32 inputs: eight conv3x3-BN-ReLU, five max-pools, Linear head."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10, width: int = 64):
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for item in VGG11_CHANNELS:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                out = item * width
                layers += [nn.Conv2d(channels, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU()]
                channels = out
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(-3))


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 for 32x32 inputs: conv3x3 stem, four stages of two basic blocks, global average pool."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10, width: int = 64):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        stages, in_planes = [], width
        for i, stride in enumerate((1, 2, 2, 2)):
            planes = width * 2**i
            stages.append(nn.Sequential(BasicBlock(in_planes, planes, stride), BasicBlock(planes, planes, 1)))
            in_planes = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.linear = nn.Linear(in_planes, num_classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(-3))


def lenet5(num_classes: int = 10) -> nn.Module:
    return LeNet5(1, num_classes)


def vgg11(num_classes: int = 10, width: int = 64) -> nn.Module:
    return VGG11(3, num_classes, width)


def resnet18(num_classes: int = 10, width: int = 64) -> nn.Module:
    return ResNet18(3, num_classes, width)
