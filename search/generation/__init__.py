"""Generation: the generator interface, the transformers backend with prefix reuse, and vLLM servers."""
