"""``python -m benchmarks.steps``: autoft's training step in a fresh process against the same step warmed up.

One epoch of ``autoft.training.train`` on ``--rows`` IMDb reviews, four times in one process: batch 32 (the
shapes new), batch 32 again (every shape seen), batch 16 (new batch shapes), and a plain PyTorch loop over the
same batches (forward, backward, clipping, fused AdamW) as the floor. Prints milliseconds a step for each. A
large gap between the first and second line is a cost per new batch shape (on Hopper GPUs, cuDNN's attention
plans: see ``training.attention_kernels``); ``--cudnn-attention`` keeps torch's default kernel order to show it.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path

import numpy as np

from .compare import DEFAULT_DATA


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.steps", description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=Path(DEFAULT_DATA), help="a folder with train.parquet")
    p.add_argument("--rows", type=int, default=2048)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--device", default="cuda")
    p.add_argument("--model", default="minilm")
    p.add_argument("--cudnn-attention", action="store_true", help="leave cuDNN's attention on (torch's default)")
    args = p.parse_args(argv)

    import pandas as pd
    import torch

    from autoft import training
    from autoft.features import encode, to_device, train_batches
    from autoft.metrics import Objective
    from autoft.models import BaseModel, load_tokenizer, resolve
    from autoft.plugins import load_plugins
    from autoft.strategies import Phase

    if args.cudnn_attention:
        training.attention_kernels = lambda device: contextlib.nullcontext()
    device = torch.device(args.device)
    table = pd.read_parquet(args.data / "train.parquet", columns=["text", "label"]).iloc[: args.rows + 256]
    ref = resolve(args.model, Path.cwd())
    tokenizer = load_tokenizer(ref)
    texts, labels = table.text.tolist(), table.label.to_numpy()
    train = encode(tokenizer, texts[: args.rows], labels[: args.rows], args.max_length)
    val = encode(tokenizer, texts[args.rows :], labels[args.rows :], args.max_length)
    base = BaseModel(ref, ("0", "1"))
    metric = {"accuracy": load_plugins().metric("accuracy")}
    precision = "bf16" if device.type == "cuda" else "fp32"

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def autoft_epoch(label: str, batch_size: int) -> None:
        model = base.fresh(0).to(device)
        hp = training.Hyperparams(learning_rate=5e-5, epochs=1, batch_size=batch_size, weight_decay=0.0)
        settings = training.TrainSettings(precision=precision, early_stopping_patience=0, device=device.type)
        phases = [Phase("full", [n for n, _ in model.named_parameters()], hp.learning_rate, 1)]
        result = training.train(
            model, phases, train, val, hp=hp, settings=settings, objective=Objective("accuracy"), metrics=metric,
            device=device, pad_id=tokenizer.pad_token_id, seed=0,
        )  # fmt: skip
        steps = -(-len(train) // batch_size)
        print(f"{label:34} batch {batch_size:3}: {1000 * result.train_seconds / steps:7.1f} ms a step", flush=True)

    def plain_epoch(batch_size: int) -> None:
        model = base.fresh(0).to(device).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, fused=True)
        batches = train_batches(train.lengths, batch_size, np.random.default_rng(0))
        sync()
        started = time.perf_counter()
        with training.attention_kernels(device):
            for rows in batches:
                batch = to_device(train.batch(rows, tokenizer.pad_token_id), device)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                    loss = model(**batch).loss
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
        sync()
        ms = 1000 * (time.perf_counter() - started) / len(batches)
        print(f"{'plain loop, shapes seen':34} batch {batch_size:3}: {ms:7.1f} ms a step", flush=True)

    autoft_epoch("autoft, fresh process", 32)
    autoft_epoch("autoft, shapes seen", 32)
    autoft_epoch("autoft, new batch size", 16)
    plain_epoch(32)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
