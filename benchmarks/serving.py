"""Throughput and latency of the local model server against a bare `model.generate` loop, on the real model.

    python benchmarks/serving.py [--levels 1 4 8 16] [--max-tokens 48] [--rounds 2] [--dtype auto]

Starts `maro model serve` (in a subprocess) on SmolLM2-135M-Instruct; at each concurrency level
C, C clients each send `rounds` chat requests one after another (exactly `max-tokens` tokens each,
`ignore_eos`); then the same token counts go through `model.generate` at batch 1 and at batch C
in this process. Prints generated tokens per second and p50/p99 request latency. Targets: at 16
concurrent requests at least 4x the tokens per second of sequential ones, and at least 0.8 of
bare generate at the same batch size.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time

import httpx

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TOPICS = ["the weather", "a chess opening", "bargaining over a price", "a river crossing", "trust between rivals",
          "a short poem", "prime numbers", "a card game", "a trading offer", "a mountain village", "team work",
          "an auction", "a riddle", "the ocean", "a busy market", "a lost key"]


def messages(i: int) -> list[dict]:
    """Self-play-sized prompts (about 90 tokens), different per request so nothing is shared."""
    rules = ("You are playing a negotiation game against another agent. Each turn you may make an offer, "
             "accept, or reject. Answer in the form [Offer: N] where N is an integer from 0 to 100. ")
    return [{"role": "system", "content": rules},
            {"role": "user", "content": f"Round {i}. Before you offer, say one sentence about {TOPICS[i % 16]}."}]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def serve_level(url: str, clients: int, rounds: int, max_tokens: int) -> dict:
    latencies, tokens = [], 0

    async def client(c: int, http: httpx.AsyncClient) -> None:
        nonlocal tokens
        for r in range(rounds):
            body = {"model": "smollm2", "messages": messages(c * rounds + r), "max_tokens": max_tokens,
                    "temperature": 0.7, "ignore_eos": True, "logprobs": True}
            start = time.perf_counter()
            reply = await http.post("/v1/chat/completions", json=body)
            reply.raise_for_status()
            latencies.append(time.perf_counter() - start)
            tokens += reply.json()["usage"]["completion_tokens"]

    async with httpx.AsyncClient(base_url=url, timeout=600) as http:
        start = time.perf_counter()
        await asyncio.gather(*[client(c, http) for c in range(clients)])
        wall = time.perf_counter() - start
    return {"tok_s": tokens / wall, "p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99),
            "tokens": tokens}


def bare_level(model, tokenizer, batch: int, rounds: int, max_tokens: int) -> dict:
    """`rounds` generate calls of `batch` left-padded prompts, each exactly `max_tokens` new tokens."""
    import torch

    latencies, tokens = [], 0
    start = time.perf_counter()
    for r in range(rounds):
        texts = [tokenizer.apply_chat_template(messages(b * rounds + r), add_generation_prompt=True, tokenize=False)
                 for b in range(batch)]
        enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(**enc, do_sample=True, temperature=0.7, top_p=1.0, top_k=0,
                                 max_new_tokens=max_tokens, min_new_tokens=max_tokens,
                                 pad_token_id=tokenizer.pad_token_id)
        latencies.append(time.perf_counter() - t0)
        tokens += (out.shape[1] - enc["input_ids"].shape[1]) * batch
    wall = time.perf_counter() - start
    return {"tok_s": tokens / wall, "p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99)}


def start_server(model_dir, port: int, dtype: str, max_batch: int) -> subprocess.Popen:
    code = ("from pathlib import Path; from maro.learner.serving.app import ServeConfig, serve; "
            f"serve(ServeConfig(model_dir=Path({str(model_dir)!r}), port={port}, dtype={dtype!r}, "
            f"max_batch_size={max_batch}))")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise TimeoutError("model server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=2, help="requests per client (level 1 runs twice as many)")
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"])
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from maro.learner.localmodel import pull
    from maro.learner.models import resolve_dtype

    model_dir = pull()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    dtype = resolve_dtype(args.dtype)
    print(f"model {model_dir.name}, dtype {dtype}, torch threads {torch.get_num_threads()}, "
          f"{args.max_tokens} tokens per request")
    server = start_server(model_dir, port, args.dtype, max(args.levels))
    served = {}
    try:
        asyncio.run(serve_level(url, 1, 1, 8))  # warm-up
        for level in args.levels:
            rounds = args.rounds * 2 if level == 1 else args.rounds
            served[level] = asyncio.run(serve_level(url, level, rounds, args.max_tokens))
            print(f"  server, {level:>2} concurrent: {served[level]['tok_s']:.1f} tok/s", flush=True)
        stats = httpx.get(f"{url}/v1/stats").json()
    finally:
        server.terminate()
        server.wait(timeout=30)

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).eval()
    bare_level(model, tokenizer, 1, 1, 8)  # warm-up
    bare = {}
    for level in args.levels:
        bare[level] = bare_level(model, tokenizer, level, args.rounds * 2 if level == 1 else args.rounds, args.max_tokens)
        print(f"  bare generate, batch {level:>2}: {bare[level]['tok_s']:.1f} tok/s", flush=True)

    sequential = served[args.levels[0]]["tok_s"]
    print()
    print("| concurrent | server tok/s | p50 s | p99 s | x sequential | bare generate tok/s (batch) | server / bare |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for level in args.levels:
        s, b = served[level], bare[level]
        print(f"| {level} | {s['tok_s']:.1f} | {s['p50']:.2f} | {s['p99']:.2f} | {s['tok_s'] / sequential:.2f} "
              f"| {b['tok_s']:.1f} ({level}) | {s['tok_s'] / b['tok_s']:.2f} |")
    print(f"\nbare generate at batch 1: {bare[args.levels[0]]['tok_s']:.1f} tok/s; server stats: "
          f"{stats['steps']} decode steps, {stats['batches']} prefills, max {stats['max_batch_rows']} rows")


if __name__ == "__main__":
    main()
