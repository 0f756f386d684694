"""A fine-tuning run: what it is asked (config) and what it says (events), batches in a
resumable order, the chunked loss, the memory plan, the loop itself, and runs over several
processes."""
