"""Embed a large contrastive batch chunk by chunk, at one chunk's activation memory, keeping every negative.

NT-Xent needs all views of the global batch at once: each view's negatives are all the others. Plain gradient
accumulation (k small batches, one loss and one backward pass each) would shrink every loss's negative set to one
small batch, which is not the loss SimCLR optimises. Here the batch is embedded in chunks under activation
checkpointing instead:

1. the forward pass runs chunk after chunk and keeps only each chunk's input and its embeddings z;
2. the loss is computed once, over every embedding of the batch (and, with several devices, over the embeddings
   gathered from all of them), so ∂L/∂z_i is the full-batch gradient for every view i;
3. the backward pass reaches each chunk's embeddings with that gradient, recomputes that chunk's activations,
   back-propagates through them, frees them, and moves on to the next chunk.

The parameter gradient is therefore the gradient of the one full-batch loss, summed over chunks — what
GradCache (Gao et al. 2021) computes with an explicit second pass — at the memory of one chunk, for the price of
one extra forward pass. Two things differ from a single pass over the whole batch: BatchNorm normalises each chunk
with the chunk's own statistics (as SimCLR without its cross-device "global BN" normalises per device), and the
running statistics are updated once per chunk: the recomputation leaves them alone
(:func:`~marsvision.training.batchnorm.running_statistics_frozen`) instead of updating them a second time.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from functools import partial

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from marsvision.training.batchnorm import running_statistics_frozen


def _contexts(module: nn.Module) -> tuple[AbstractContextManager[None], AbstractContextManager[None]]:
    """The forward pass runs as usual; the recomputation leaves the BatchNorm statistics as the forward left them."""
    return nullcontext(), running_statistics_frozen(module)


def checkpointed_chunks(
    module: nn.Module, function: Callable[[Tensor], Tensor], inputs: Tensor, chunk_size: int | None
) -> Tensor:
    """``function(inputs)`` computed ``chunk_size`` rows at a time under activation checkpointing (module docstring).

    Args:
        module: the network ``function`` runs (its BatchNorm statistics are protected during recomputation).
        function: rows (n, ...) → outputs (n, ...), e.g. the projection of the encoder's features.
        inputs: (N, ...) the whole batch.
        chunk_size: rows per chunk; None or ≥ N computes the batch in one plain pass.

    Returns:
        (N, ...) the outputs, with gradients flowing to ``module``'s parameters.
    """
    (outputs,) = checkpointed_chunks_of_many(module, lambda rows: (function(rows),), inputs, chunk_size)
    return outputs


def checkpointed_chunks_of_many(
    module: nn.Module, function: Callable[[Tensor], tuple[Tensor, ...]], inputs: Tensor, chunk_size: int | None
) -> tuple[Tensor, ...]:
    """:func:`checkpointed_chunks` for a ``function`` with several outputs, each (n, ...): each is concatenated."""
    if chunk_size is None or chunk_size >= len(inputs):
        return function(inputs)
    contexts = partial(_contexts, module)
    chunks = [
        checkpoint(function, chunk, use_reentrant=False, context_fn=contexts) for chunk in inputs.split(chunk_size)
    ]
    return tuple(torch.cat(outputs) for outputs in zip(*chunks, strict=True))
