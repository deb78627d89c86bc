"""Which tokens pushed a prediction: integrated gradients over the input embeddings (captum).

For each text, the attribution of a token is how much moving its embedding from the
padding token's to its own raised the logit of the target class (the predicted one,
for a mistake), integrated along the straight path between them. Special tokens
(CLS, SEP, ...) keep their own ids in the baseline, so they get no attribution and
are left out. Scores are scaled by the text's largest magnitude to [-1, 1].
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

N_STEPS = 32
INTERNAL_BATCH = 32  # all N_STEPS in one batch: one forward and backward per text


def token_attributions(
    model: Any,
    tokenizer: Any,
    texts: list[str],
    targets: list[int],
    *,
    max_length: int,
    device: torch.device,
    normalize: bool = True,
    pairs: list[str] | None = None,
) -> list[list[tuple[str, float]]]:
    """Per text, (token, attribution to class ``targets[i]``) for each of its non-special tokens.

    With ``pairs`` (sentence pairs) each text is encoded with its second text, and the tokens of
    both come back with a ``[SEP]`` (scored 0) between them.

    ``model`` is a sequence classifier (moved to ``device``, put in eval mode); ``normalize`` divides each
    text's scores by their largest magnitude (raw scores sum to the target logit's change from the baseline).
    """
    from captum.attr import LayerIntegratedGradients

    if len(texts) != len(targets):
        raise ValueError(f"need one target per text: {len(texts)} texts, {len(targets)} targets")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    model.to(device)
    model.eval()

    def forward(input_ids: torch.Tensor, attention_mask: torch.Tensor, *types: torch.Tensor) -> torch.Tensor:
        extra = {"token_type_ids": types[0]} if types else {}
        return model(input_ids=input_ids, attention_mask=attention_mask, **extra).logits.float()

    lig = LayerIntegratedGradients(forward, model.get_input_embeddings())
    out = []
    for row, (text, target) in enumerate(zip(texts, targets)):
        second = () if pairs is None else (pairs[row],)
        enc = tokenizer(
            text,
            *second,
            truncation=True if pairs is None else "longest_first",
            max_length=max_length,
            return_special_tokens_mask=True,
            return_tensors="pt",
        )
        ids = enc["input_ids"].to(device)
        mask = enc["attention_mask"].to(device)
        types = (enc["token_type_ids"].to(device),) if pairs is not None and "token_type_ids" in enc else ()
        special = enc["special_tokens_mask"][0].bool()
        baseline = torch.where(special.to(device).unsqueeze(0), ids, torch.full_like(ids, pad_id))
        with torch.enable_grad():
            attr = lig.attribute(
                ids,
                baselines=baseline,
                target=int(target),
                additional_forward_args=(mask, *types),
                n_steps=N_STEPS,
                internal_batch_size=INTERNAL_BATCH,
            )
        scores = attr.sum(dim=-1)[0].detach().float().cpu().numpy()
        keep = ~special.numpy()
        tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"][0].tolist())
        scores = scores[keep]
        if normalize:
            top = float(np.abs(scores).max()) if scores.size else 0.0
            if top > 0:
                scores = scores / top
        kept = [tok for tok, k in zip(tokens, keep) if k]
        scored = [(tok, float(s)) for tok, s in zip(kept, scores)]
        if pairs is not None:  # a [SEP] where the second text starts
            segments = [seq for seq, k in zip(enc.sequence_ids(0), keep) if k]
            start = next((i for i, seq in enumerate(segments) if seq == 1), len(scored))
            scored.insert(start, ("[SEP]", 0.0))
        out.append(scored)
    return out


def explain_misclassified(
    model: Any,
    tokenizer: Any,
    evaluation_dir: Path,
    label_names: list[str],
    *,
    max_length: int,
    device: torch.device,
    n: int = 5,
) -> tuple[str, str]:
    """Attributions for the ``n`` most confident mistakes in ``evaluation_dir/misclassified.csv``: (HTML, Markdown)."""
    path = Path(evaluation_dir) / "misclassified.csv"
    if not path.is_file():
        return "", ""
    columns = {"text": str, "text_pair": str, "true": str, "predicted": str}
    frame = pd.read_csv(path, keep_default_na=False, dtype=columns).head(n)
    if frame.empty:
        return "", ""
    names = [str(x) for x in label_names]
    texts = frame["text"].tolist()
    pairs = frame["text_pair"].tolist() if "text_pair" in frame else None
    predicted = frame["predicted"].tolist()
    true = frame["true"].tolist()
    attributions = token_attributions(
        model, tokenizer, texts, [names.index(p) for p in predicted], max_length=max_length, device=device, pairs=pairs
    )
    shown = texts if pairs is None else [f"{a} [SEP] {b}" for a, b in zip(texts, pairs)]
    return (
        attributions_html(shown, predicted, true, attributions),
        attributions_markdown(shown, predicted, true, attributions),
    )


def explain_rows(
    model: Any,
    tokenizer: Any,
    rows: pd.DataFrame,
    targets: list[int],
    predicted: list[str],
    true: list[str],
    *,
    max_length: int,
    device: torch.device,
) -> tuple[str, str]:
    """Attributions of ``rows`` (columns ``text`` and, for pairs, ``text_pair``) to output ``targets``:
    (HTML, Markdown), each example headed by its ``predicted`` and ``true`` values.

    A regression model's rows are explained towards its one output (what raised or lowered the
    prediction), a multi-label model's towards the label of each wrong decision.
    """
    if rows.empty:
        return "", ""
    texts = rows["text"].astype(str).tolist()
    pairs = rows["text_pair"].astype(str).tolist() if "text_pair" in rows else None
    attributions = token_attributions(
        model, tokenizer, texts, targets, max_length=max_length, device=device, pairs=pairs
    )
    shown = texts if pairs is None else [f"{a} [SEP] {b}" for a, b in zip(texts, pairs)]
    return (
        attributions_html(shown, predicted, true, attributions),
        attributions_markdown(shown, predicted, true, attributions),
    )


def display_token(token: str) -> tuple[str, bool]:
    """A token as people read it, and whether it continues the previous word (WordPiece ``##``)."""
    if token.startswith("##"):
        return token[2:], True
    return token.lstrip("\u0120\u2581") or token, False


def attributions_html(
    texts: list[str],
    predicted_labels: list[str],
    true_labels: list[str],
    attributions: list[list[tuple[str, float]]],
) -> str:
    """An HTML fragment: each example's tokens shaded green (pushed towards the prediction) or red (against)."""
    parts = [
        '<div class="attributions" style="font-family:sans-serif;line-height:2">',
        '<p style="margin:0 0 .5em 0;font-size:90%">Each token is shaded by how much it pushed the model towards '
        'its prediction: <span style="background:rgba(22,163,74,.6);padding:1px 4px;border-radius:3px">towards</span> '
        '<span style="background:rgba(220,38,38,.6);padding:1px 4px;border-radius:3px">against</span> '
        "(integrated gradients over the input embeddings; strongest token of each example = 1).</p>",
    ]
    for text, pred, true, pairs in zip(texts, predicted_labels, true_labels, attributions):
        parts.append('<div style="margin:0 0 1em 0;padding:.5em;border:1px solid #ddd;border-radius:4px">')
        parts.append(
            f'<div style="font-size:90%;color:#444">predicted <b>{html.escape(str(pred))}</b>, '
            f"true <b>{html.escape(str(true))}</b></div>"
        )
        spans = []
        for token, score in pairs:
            shown, joined = display_token(token)
            rgb = "22,163,74" if score >= 0 else "220,38,38"
            alpha = round(min(abs(score), 1.0) * 0.8, 3)
            span = (
                f'<span title="{score:+.3f}" style="background:rgba({rgb},{alpha});padding:1px 2px;'
                f'border-radius:3px">{html.escape(shown)}</span>'
            )
            spans.append(span if joined or not spans else " " + span)
        parts.append("<div>" + "".join(spans) + "</div>")
        parts.append(
            f'<details style="font-size:85%;color:#555"><summary>full text</summary>{html.escape(str(text))}</details>'
        )
        parts.append("</div>")
    parts.append("</div>")
    return "\n".join(parts)


def attributions_markdown(
    texts: list[str],
    predicted_labels: list[str],
    true_labels: list[str],
    attributions: list[list[tuple[str, float]]],
    top: int = 5,
) -> str:
    """A Markdown list: per example, its text (shortened) and the ``top`` tokens by attribution magnitude."""
    lines = []
    for text, pred, true, pairs in zip(texts, predicted_labels, true_labels, attributions):
        strongest = sorted(pairs, key=lambda p: abs(p[1]), reverse=True)[:top]
        tokens = ", ".join(f"`{_code(display_token(t)[0])}` {s:+.2f}" for t, s in strongest)
        lines.append(f"- predicted **{_md(pred)}**, true **{_md(true)}**: {_md(_shorten(str(text)))}")
        lines.append(f"  - strongest tokens: {tokens or '-'}")
    return "\n".join(lines) + ("\n" if lines else "")


def _shorten(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _code(token: str) -> str:
    return token.replace("`", "'")


def _md(text: str) -> str:
    return " ".join(str(text).split()).replace("<", "&lt;").replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")
