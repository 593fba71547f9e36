"""An independent PyTorch GRCNN, written from shared/spec/grcnn-and-paper-methods.md (sections 1.2-1.8):
module names, registration order, shapes and initialisation as the spec gives them. Tests use it as
the reference for grcnn's models; it is not the original code.
"""
import torch
import torch.nn as nn


def bn(c, momentum):
    return nn.BatchNorm2d(c, momentum=momentum)


def kaiming(conv):
    nn.init.kaiming_normal_(conv.weight)
    return conv


def normal001(conv):
    nn.init.normal_(conv.weight, std=0.01)
    return conv


class SelectiveKernel(nn.Module):
    """conv.{m}.{0,1,2}, fc1.{0,1,2}, fc2; softmax over the branch axis."""

    def __init__(self, cin, cout, stride, groups, cifar, momentum):
        super().__init__()
        r = 32 if cifar else 16
        d = max(cin // r, 32)
        self.cout = cout
        self.conv = nn.ModuleList()
        for m in range(2):
            if cifar and m == 1:
                c = nn.Conv2d(cin, cout, 1, stride, 0, groups=groups, bias=False)
            elif cifar:
                c = nn.Conv2d(cin, cout, 3, stride, 1, groups=groups, bias=False)
            else:
                c = nn.Conv2d(cin, cout, 3, stride, 1 + m, dilation=1 + m, groups=groups, bias=False)
            self.conv.append(nn.Sequential(kaiming(c), bn(cout, momentum), nn.ReLU()))
        self.fc1 = nn.Sequential(normal001(nn.Conv2d(cout, d, 1, bias=False)), bn(d, momentum), nn.ReLU())
        self.fc2 = normal001(nn.Conv2d(d, 2 * cout, 1, bias=False))

    def forward(self, x):
        branches = [c(x) for c in self.conv]
        u = branches[0] + branches[1]
        s = u.mean((2, 3), keepdim=True)
        a = self.fc2(self.fc1(s)).reshape(x.shape[0], 2, self.cout).softmax(1)
        return sum(a[:, m, :, None, None] * branches[m] for m in range(2))


class Block(nn.Module):
    def __init__(self, cin, p, T, down, e, groups, sk, share, cifar, momentum):
        super().__init__()
        E = p * e
        self.T, self.down = T, down
        self.bn_f = bn(cin, momentum)
        self.relu_f = nn.ReLU()
        self.conv_f = kaiming(nn.Conv2d(cin, E, 3, 1, 1, groups=groups, bias=False))
        self.bn_g_f = bn(cin, momentum)
        self.relu_g_f = nn.ReLU()
        self.conv_g_f = normal001(nn.Conv2d(cin, E, 1, groups=groups, bias=True))
        self.conv_g_r = nn.Conv2d(E, E, 1, groups=groups, bias=False)
        if cifar:
            normal001(self.conv_g_r)
        shared = None
        for t in range(1, T + 1):
            if shared is None or not share:
                c1 = kaiming(nn.Conv2d(E, p, 1, bias=False))
                mid = SelectiveKernel(p, p, 1, groups, cifar, momentum) if sk else nn.Conv2d(p, p, 3, 1, 1, bias=False)
                if share and not sk:
                    kaiming(mid)
                c2 = kaiming(nn.Conv2d(p, E, 1, bias=False))
                shared = (c1, mid, c2)
            c1, mid, c2 = shared
            layers = [bn(E, momentum), nn.ReLU(), c1, bn(p, momentum), nn.ReLU(), mid]
            if not sk:
                layers += [bn(p, momentum), nn.ReLU()]
            layers.append(c2)
            self.add_module(f"iter_{t}", nn.Sequential(*layers))
            self.add_module(f"iter_g_{t}", nn.Sequential(bn(E, momentum), nn.ReLU()))
        if down:
            self.d_bn = bn(E, momentum)
            self.d_conv = kaiming(nn.Conv2d(E, E, 1, bias=False))
            self.d_bn_1 = bn(E, momentum)
            self.d_conv_1 = kaiming(nn.Conv2d(E, p, 1, bias=False))
            self.d_bn_3 = bn(p, momentum)
            self.d_conv_3 = (SelectiveKernel(p, p, 2, groups, cifar, momentum) if sk
                             else kaiming(nn.Conv2d(p, p, 3, 2, 1, bias=False)))
            if cifar and not sk:
                self.d_bn_1e = bn(p, momentum)
            self.d_conv_1e = kaiming(nn.Conv2d(p, E, 1, bias=False))

    def forward(self, u):
        relu = torch.relu
        x = self.conv_f(relu(self.bn_f(u)))
        gf = self.conv_g_f(relu(self.bn_g_f(u)))
        for t in range(1, self.T + 1):
            g = self.conv_g_r(getattr(self, f"iter_g_{t}")(x))
            x = x + torch.sigmoid(g + gf) * getattr(self, f"iter_{t}")(x)
        if not self.down:
            return x
        a = self.d_conv(nn.functional.avg_pool2d(relu(self.d_bn(x)), 2, 2))
        b = self.d_conv_1e(self.d_conv_3(relu(self.d_bn_3(self.d_conv_1(relu(self.d_bn_1(x)))))))
        return a + b


class GRCNN(nn.Module):
    def __init__(self, iters, planes, sk, share, cifar, classes, stem=64, pool=None, stem_stride=1):
        super().__init__()
        e = 2 if sk else 4
        groups = 16 if cifar else 32
        momentum = 0.05 if cifar else 0.1
        self.cifar = cifar
        if cifar:
            self.conv_3x3 = kaiming(nn.Conv2d(3, stem, 3, stem_stride, 1, bias=False))
        else:
            self.conv1 = kaiming(nn.Conv2d(3, 64, 7, 2, 3, bias=False))
            self.bn1 = bn(64, momentum)
            self.relu = nn.ReLU()
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            self.conv2 = kaiming(nn.Conv2d(64, 64, 3, 1, 1, bias=False))
        names = ["stage_1", "stage_2", "stage_3"] if cifar else ["layer1", "layer2", "layer3", "layer4"]
        cin = stem
        for i, (name, T, p) in enumerate(zip(names, iters, planes)):
            self.add_module(name, Block(cin, p, T, i + 1 < len(names), e, groups, sk, share, cifar, momentum))
            cin = p * e
        self.blocks = names
        self.lastact = nn.Sequential(bn(cin, momentum), nn.ReLU())
        # pool 0: a global average (grcnn_small), else the original fixed window
        self.avgpool = nn.AdaptiveAvgPool2d(1) if pool == 0 else nn.AvgPool2d(8 if cifar else 7)
        self.classifier = nn.Linear(cin, classes)
        nn.init.kaiming_normal_(self.classifier.weight)
        nn.init.zeros_(self.classifier.bias)
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward(self, x):
        if self.cifar:
            x = self.conv_3x3(x)
        else:
            x = self.conv2(self.maxpool(self.relu(self.bn1(self.conv1(x)))))
        for name in self.blocks:
            x = getattr(self, name)(x)
        x = self.avgpool(self.lastact(x))
        return self.classifier(x.flatten(1))


VARIANTS = {
    "grcnn55": dict(iters=[3, 3, 4, 3], planes=[64, 128, 256, 512], sk=False, share=False, cifar=False),
    "grcnn109": dict(iters=[3, 3, 22, 3], planes=[64, 128, 256, 512], sk=False, share=False, cifar=False),
    "skgrcnn55": dict(iters=[3, 3, 4, 3], planes=[128, 256, 512, 1024], sk=True, share=False, cifar=False),
    "skgrcnn109": dict(iters=[3, 3, 22, 3], planes=[128, 256, 512, 1024], sk=True, share=False, cifar=False),
    "grcnn55_share": dict(iters=[3, 3, 4, 3], planes=[64, 128, 256, 512], sk=False, share=True, cifar=False),
    "grcnn109_share": dict(iters=[3, 3, 22, 3], planes=[64, 128, 256, 512], sk=False, share=True, cifar=False),
    "grcnn56": dict(iters=[3, 5, 7], planes=[128, 160, 192], sk=False, share=False, cifar=True),
    "grcnn56_share": dict(iters=[3, 5, 7], planes=[128, 160, 192], sk=False, share=True, cifar=True),
    "grcnn110": dict(iters=[6, 9, 18], planes=[128, 160, 192], sk=False, share=False, cifar=True),
    "grcnn110_share": dict(iters=[6, 9, 18], planes=[128, 160, 192], sk=False, share=True, cifar=True),
    "grcnn110_sk": dict(iters=[6, 9, 18], planes=[192, 320, 448], sk=True, share=False, cifar=True),
    "grcnn110_sk_share": dict(iters=[6, 9, 18], planes=[192, 320, 448], sk=True, share=True, cifar=True),
    "grcnn_small": dict(iters=[1, 2, 2], planes=[16, 32, 48], sk=False, share=False, cifar=True, stem=32, pool=0,
                        stem_stride=2),
}


def build(name, classes):
    return GRCNN(classes=classes, **VARIANTS[name])


def calibrate_batch_norms(net, variant, size):
    """BN as in a trained network: affine parameters away from 1/0, and running statistics calibrated on a
    batch of 4 other images (cumulative averages), so that eval mode is well conditioned and differs from
    train mode; then the variant's own momentum and a zero batch counter. Draws from torch's generator."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.8, 1.2)
                m.bias.uniform_(-0.1, 0.1)
                m.momentum = None
        net.train()
        net(torch.rand(4, 3, size, size) * 2 - 1)
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = 0.05 if VARIANTS[variant]["cifar"] else 0.1
                m.num_batches_tracked.zero_()
