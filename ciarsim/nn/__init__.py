"""Decision models: procedural data, VQ tokenizer, GPTs, device model, quality metrics."""
