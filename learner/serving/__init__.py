"""The local model server, laid out like vLLM's entry points:

- `config`: `ServeConfig` (`maro model serve`'s options); `protocol`: the OpenAI request and
  response shapes; `routes`: the HTTP routes; `handler`: `ChatHandler` and the typed job events;
  `app`: `create_app` and `serve`.
- `engine`: the model, tokenizer and adapters (`GenerationEngine`, `AdapterStore`); `batch`: one
  decode batch (`DecodeBatch`, `generate`); `prefix`: the prompt-prefix KV cache; `scheduler`:
  the model thread with continuous batching.
- `client`: `ModelServerConfig`, how agents and the learner reach a local or vLLM server and
  publish adapters to it; `process`: the server as a child process.

Importing the package loads nothing heavy: torch, transformers and FastAPI come with the modules
that need them.
"""
