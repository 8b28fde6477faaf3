"""The top's calls as data: the testbench's list of calls, and the golden model run through them.

A call is one int32 row (tb/data/calls.bin): n_tokens, batch_mode, reset_state, then the token slots.
"""

from __future__ import annotations

import numpy as np

from hlsgen.model import golden
from hlsgen.model.spec import MAX_BATCH, TestbenchSpec

# n_tokens, batch_mode, reset_state (a bit per state slot), then MAX_BATCH token slots (those
# past n_tokens are 0).
CALL_HEADER = 3
CALL_WIDTH = CALL_HEADER + MAX_BATCH


def call_row(tokens, batch_mode: bool, reset_mask: int) -> list[int]:
    return [len(tokens), int(batch_mode), reset_mask] + list(tokens) + [0] * (MAX_BATCH - len(tokens))


def read_calls(path) -> np.ndarray:
    return np.fromfile(path, "<i4").reshape(-1, CALL_WIDTH)


def run_calls(model: golden.Model, calls: np.ndarray, trace=golden._no_trace) -> np.ndarray:
    """Feed the calls exactly as the top takes them; returns raw logits [T, V], T the tokens of all
    calls in order.  batch_mode 0: the tokens continue the sequence in state slot 0 (a prompt
    block, or one decoded token); 1: token t is the next token of the sequence in slot t.  The top
    reuses each weight lane across a call's tokens; the numbers are those of one token at a time."""
    rows, states = [], {}
    for n, batch_mode, reset_mask, *tokens in calls.tolist():
        for slot in range(MAX_BATCH):
            if reset_mask >> slot & 1:
                states[slot] = model.initial_state()
        for t, token in enumerate(tokens[:n]):
            slot = t if batch_mode else 0
            state = states[slot] if slot in states else model.initial_state()   # a slot never reset: zeros
            logits, states[slot] = model.forward([int(token)], state, trace)
            rows.append(logits)
    return np.concatenate(rows, axis=0)


def testbench_calls(model: golden.Model, tb: TestbenchSpec, batch: int) -> np.ndarray:
    """The calls the testbench makes: a prompt in blocks of `batch` tokens, its greedy continuation
    one token per call, then a reset and a second prompt.  With batch > 1 the second prompt runs as
    `batch` sequences side by side (one per state slot), the last call one sequence short."""
    rng = np.random.default_rng(tb.seed)
    vocab = model.spec.vocab
    prompt = [int(t) for t in rng.integers(0, vocab, tb.prompt_tokens)]
    # Each generated token is fed back except the last, whose logits nothing would check.
    continuation = model.generate(prompt, tb.decode_steps)[:-1] if tb.decode_steps else []
    calls = [call_row(prompt[i:i + batch], False, int(i == 0)) for i in range(0, len(prompt), batch)]
    calls += [call_row([token], False, 0) for token in continuation]
    if tb.second_prompt_tokens:
        if batch == 1:
            second = [int(t) for t in rng.integers(0, vocab, tb.second_prompt_tokens)]
            calls += [call_row([token], False, int(j == 0)) for j, token in enumerate(second)]
        else:
            side_by_side = rng.integers(0, vocab, (tb.second_prompt_tokens, batch))
            calls += [call_row([int(t) for t in row], True, (1 << batch) - 1 if j == 0 else 0)
                      for j, row in enumerate(side_by_side)]
            calls.append(call_row([int(t) for t in rng.integers(0, vocab, batch - 1)], True, 0))
    return np.array(calls, np.int32).reshape(-1, CALL_WIDTH)
