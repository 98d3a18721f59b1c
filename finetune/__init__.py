"""The reranker language model: GGUF conversion, LoRA scoring, training, adapters."""
