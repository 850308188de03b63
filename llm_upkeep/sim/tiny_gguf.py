"""Write a tiny llama GGUF with random weights, so tests can run the real llama.cpp server.

Why: no model file ships in any installable package, and a real one is gigabytes. A 2-layer,
width-64 llama with an SPM ("llama") tokenizer loads in milliseconds and streams over a
thousand tokens a second on a CPU, which is all a protocol-and-timing test needs.

Traps this avoids (see the environment notes):
- The vocabulary carries the 256 byte-fallback tokens (``<0x00>`` .. ``<0xFF>``) with scores and
  types, as llama.cpp's SPM tokenizer expects.
- Raw-byte tokens and the end-of-text token are made practically impossible to sample: every
  token embedding has a constant dimension 0, no layer writes into that dimension (the rows of
  the attention output and FFN down projections for it are zero), so after the final RMSNorm it
  is still strongly positive, and the output rows of those tokens weight it strongly negative.
  Otherwise llama-cpp-python holds back incomplete UTF-8 until the end of a stream (one late
  first token, per-token time growing with length) or generation stops at once.
- Different seeds give different weights, hence different answers: two models for rollout tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

# Common English words plus the vocabulary of the default benchmark suite's jobs (contracts,
# support tickets, dates), so prompts tokenize into words rather than single characters.
_WORDS = """
the of and to a in is it you that he was for on are with as I his they be at one have this from or
had by not word but what some we can out other were all there when up use your how said an each
she which do their time if will way about many then them write would like so these her long make
thing see him two has look more day could go come did number sound no most people my over know
water than call first who may down side been now find any new work part take get place made live
where after back little only round man year came show every good me give our under name very
through just form sentence great think say help low line differ turn cause much mean before move
right boy old too same tell does set three want air well also play small end put home read hand
port large spell add even land here must big high such follow act why ask men change went light
kind off need house picture try us again animal point mother world near build self earth father
contract clause party parties agreement terminate termination notice written days months term
payment invoice fee fees late interest liability damages indemnify confidential information
disclose law govern breach cure period renew renewal automatically unless either supplier
customer shall within prior effective date dates meeting deadline delivery schedule monday
tuesday wednesday thursday friday saturday sunday january february march april june july august
september october november december ticket billing technical account refund charge charged twice
password login error crash app support urgent priority category summary summarize classify
extract answer json only email please thanks regards team project review call office order
shipping shipped arrive arrived broken cancel subscription upgrade plan price total amount
"""

_SPECIAL = ["<unk>", "<s>", "</s>"]
UNK_ID, BOS_ID, EOS_ID = 0, 1, 2
_SPACE = "\u2581"  # SentencePiece's word-boundary marker


def tiny_vocab(extra_words: tuple[str, ...] = ()) -> tuple[list[str], list[float], list[int]]:
    """Tokens, scores and token types of an SPM vocabulary with byte fallback."""
    from gguf import TokenType

    tokens = list(_SPECIAL)
    types = [int(TokenType.UNKNOWN), int(TokenType.CONTROL), int(TokenType.CONTROL)]
    scores = [0.0, 0.0, 0.0]
    for b in range(256):
        tokens.append(f"<0x{b:02X}>")
        types.append(int(TokenType.BYTE))
        scores.append(0.0)
    seen = set(tokens)
    pieces = [_SPACE] + [chr(c) for c in range(33, 127)]
    # llama.cpp's SPM tokenizer merges two adjacent pieces only when the merged piece is in the
    # vocabulary, so every prefix of a word must be a token for the whole word to form.
    words = []
    for w in (*_WORDS.split(), *extra_words):
        for form in (w, w.capitalize()):
            piece = _SPACE + form
            words += [piece[:i] for i in range(2, len(piece) + 1)]
    for i, p in enumerate(pieces + words):
        if p in seen:
            continue
        seen.add(p)
        tokens.append(p)
        types.append(int(TokenType.NORMAL))
        # SPM merges the adjacent pair whose merged piece scores highest: prefer long pieces.
        scores.append(float(len(p)) - i * 1e-4)
    return tokens, scores, types


def write_tiny_llama_gguf(
    path: str | os.PathLike,
    *,
    seed: int = 0,
    n_layers: int = 2,
    width: int = 64,
    n_heads: int = 4,
    n_kv_heads: int = 4,
    ff_mult: int = 2,
    context_length: int = 2048,
    extra_words: tuple[str, ...] = (),
) -> Path:
    """Write the model to ``path`` (temp file + fsync + os.replace) and return the path."""
    from gguf import GGUFWriter, LlamaFileType

    if width % n_heads or n_heads % n_kv_heads:
        raise ValueError("width must be divisible by n_heads, and n_heads by n_kv_heads")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tokens, scores, types = tiny_vocab(extra_words)
    n_vocab = len(tokens)
    head_dim = width // n_heads
    n_ff = width * ff_mult
    rng = np.random.default_rng(seed)

    def dense(rows: int, cols: int) -> np.ndarray:
        # numpy (out, in) == GGUF ne {in, out}, the layout llama.cpp multiplies as y = W x.
        return (rng.standard_normal((rows, cols)) / np.sqrt(cols)).astype(np.float32)

    emb = rng.standard_normal((n_vocab, width)).astype(np.float32)
    emb[:, 0] = 1.0  # the constant dimension nothing else writes to
    out = dense(n_vocab, width) * 4.0  # sharper logits: greedy text varies with the seed
    out[:, 0] = 0.0
    banned = [UNK_ID, BOS_ID, EOS_ID, *range(3, 3 + 256)]
    out[banned, 0] = -1000.0

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    w = GGUFWriter(str(tmp), "llama")
    w.add_name(f"tiny-random-llama-seed{seed}")
    w.add_file_type(int(LlamaFileType.ALL_F32))
    w.add_context_length(context_length)
    w.add_embedding_length(width)
    w.add_block_count(n_layers)
    w.add_feed_forward_length(n_ff)
    w.add_rope_dimension_count(head_dim)
    w.add_head_count(n_heads)
    w.add_head_count_kv(n_kv_heads)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(n_vocab)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(UNK_ID)
    w.add_bos_token_id(BOS_ID)
    w.add_eos_token_id(EOS_ID)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_add_space_prefix(True)

    w.add_tensor("token_embd.weight", emb)
    w.add_tensor("output_norm.weight", np.ones(width, dtype=np.float32))
    w.add_tensor("output.weight", out)
    kv_width = head_dim * n_kv_heads
    for i in range(n_layers):
        o = dense(width, width)
        o[0, :] = 0.0
        down = dense(width, n_ff)
        down[0, :] = 0.0
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(width, dtype=np.float32))
        w.add_tensor(f"blk.{i}.attn_q.weight", dense(width, width))
        w.add_tensor(f"blk.{i}.attn_k.weight", dense(kv_width, width))
        w.add_tensor(f"blk.{i}.attn_v.weight", dense(kv_width, width))
        w.add_tensor(f"blk.{i}.attn_output.weight", o)
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(width, dtype=np.float32))
        w.add_tensor(f"blk.{i}.ffn_gate.weight", dense(n_ff, width))
        w.add_tensor(f"blk.{i}.ffn_up.weight", dense(n_ff, width))
        w.add_tensor(f"blk.{i}.ffn_down.weight", down)
    try:
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        with open(tmp, "rb") as f:
            if f.read(4) != b"GGUF":
                raise OSError(f"{tmp}: written file has no GGUF magic")
        os.replace(tmp, path)
    finally:
        w.close()
        if tmp.exists():
            tmp.unlink()
    return path


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(description="Write a tiny random llama GGUF (for tests and demos).")
    p.add_argument("path")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--width", type=int, default=64)
    args = p.parse_args(argv)
    out = write_tiny_llama_gguf(args.path, seed=args.seed, n_layers=args.layers, width=args.width)
    print(f"{out} ({out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
