"""Loads the model the demo saved (safetensors) into the PyTorch twin's CNN and reports
its test accuracy: weights move from ctorch to PyTorch with no conversion.

    python3 examples/check_demo_model.py build/fashion_cnn.safetensors [--data DIR]
"""
import argparse

import torch
from safetensors.torch import load_file

from demo_torch import load, model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("path")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    a = ap.parse_args()
    net = model()
    net.load_state_dict(load_file(a.path))  # strict: every name and shape must match
    net.eval()
    x, y = load(a.data, "test")
    with torch.no_grad():
        correct = sum((net(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum().item() for i in range(0, len(x), 1000))
    print(f"PyTorch with ctorch's weights: test accuracy {100.0 * correct / len(x):.2f}%")


if __name__ == "__main__":
    main()
