"""One trial, a pure function of its spec: the training loop (`train`), running it once with retries and writing
its folder (`execute`), GPU packing checks (`packing`)."""
